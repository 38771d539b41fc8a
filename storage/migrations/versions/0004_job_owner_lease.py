"""Job ownership: an owner id and a lease on each pending job, and a row per running process.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23

Two processes on one store (a bot and `imagine resume`, two bots by mistake, a restarted bot
whose old process lingers) must never run the same job. A process claims the jobs it holds by
writing its owner id and a lease deadline, renews the lease while it holds them, and recovery
takes only pending jobs whose lease has run out. `processes` records each live bot or console
with its own lease, so a second bot can see the first one. Old rows get NULL owners: nobody
holds them, so the first recovery may take them, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"


def upgrade() -> None:
    # Plain ADD COLUMN, not batch mode: a batch rebuild of `jobs` would drop it, and its images
    # and messages with it through ON DELETE CASCADE (see 0003).
    op.add_column("jobs", sa.Column("owner_id", sa.String(64), nullable=True))
    op.add_column("jobs", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_jobs_owner", "jobs", ["owner_id"])
    op.create_table(
        "processes",
        sa.Column("owner_id", sa.String(64), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("processes")
    op.drop_index("ix_jobs_owner", table_name="jobs")
    op.drop_column("jobs", "lease_until")
    op.drop_column("jobs", "owner_id")
