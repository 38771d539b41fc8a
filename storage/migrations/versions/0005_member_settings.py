"""Member settings: each member's /settings per server (Remix, stylize, raw, variation, version).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

A new table only; no existing row changes. A member without a row has every default.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "member_settings",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("guild_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("remix", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("stylize", sa.Integer(), nullable=True),
        sa.Column("raw", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("variation", sa.String(8), nullable=False, server_default="high"),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("member_settings")
