"""Member settings and Fast time: each member's /settings per server (Remix, stylize, raw,
variation, version, speed, LoRA style), members' `/prefer option`s, the server's Fast budget, and the Fast
time each member spent.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

New tables, and new nullable columns on `guild_settings` (plain ADD COLUMN); no existing row
changes. A member without a row has every default; a server without a budget has unlimited Fast.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"


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
        sa.Column("speed", sa.String(8), nullable=False, server_default="fast"),
        sa.Column("lora", sa.String(64), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "prompt_options",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    op.create_table(
        "fast_usage",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("guild_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("used_s", sa.Float(), nullable=False, server_default="0"),
        sa.Column("granted_s", sa.Float(), nullable=False, server_default="0"),
    )
    op.add_column("guild_settings", sa.Column("fast_seconds", sa.Integer(), nullable=True))
    op.add_column("guild_settings", sa.Column("fast_period_hours", sa.Integer(), nullable=True))
    op.add_column("guild_settings", sa.Column("fast_role_seconds", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("guild_settings") as batch:
        batch.drop_column("fast_role_seconds")
        batch.drop_column("fast_period_hours")
        batch.drop_column("fast_seconds")
    op.drop_table("fast_usage")
    op.drop_table("prompt_options")
    op.drop_table("member_settings")
