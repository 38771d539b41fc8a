"""Stealth: a server may allow it (`guild_settings.allow_stealth`), and a member on such a server
may choose it in /settings (`member_settings.stealth`); a stealth job records it in its params.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06

Two new columns with false defaults (plain ADD COLUMN); every existing row stays public.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"


def upgrade() -> None:
    op.add_column(
        "guild_settings", sa.Column("allow_stealth", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.add_column(
        "member_settings", sa.Column("stealth", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    with op.batch_alter_table("member_settings") as batch:
        batch.drop_column("stealth")
    with op.batch_alter_table("guild_settings") as batch:
        batch.drop_column("allow_stealth")
