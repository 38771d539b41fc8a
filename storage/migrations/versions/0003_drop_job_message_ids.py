"""Drop `jobs.message_ids`: `job_messages` is the one record of a job's messages.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

The JSON list duplicated the link table without the channels. Every id in it was also written to
`job_messages` (both were written together since revision 0001), so nothing is lost.

A plain DROP COLUMN, not batch mode: SQLite (3.35 and later) drops a column that is in no index or
constraint in place, while a batch rebuild would drop and re-create `jobs`, and dropping a table
with foreign keys on deletes its images and messages through ON DELETE CASCADE.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"


def upgrade() -> None:
    op.drop_column("jobs", "message_ids")


def downgrade() -> None:
    # The column comes back empty; 0002's code reads `job_messages`, so links and edits still work.
    op.add_column("jobs", sa.Column("message_ids", sa.JSON(), nullable=False, server_default="[]"))
