"""Each job message records its own channel.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22

`/show` can re-post a job in another channel; hide/unhide must edit that copy where it is, not
in the job's channel. Old rows keep NULL (they were all posted in the job's channel, which
`Store.job_messages` fills in). Batch mode so SQLite, which cannot ALTER much, gets the same.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"


def upgrade() -> None:
    with op.batch_alter_table("job_messages") as batch:
        batch.add_column(sa.Column("channel_id", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_messages") as batch:
        batch.drop_column("channel_id")
