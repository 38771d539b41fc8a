"""Web sign-in: one-time links and browser sessions, stored by the hash of their secret.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06

`/web` in Discord (and `imagine web-link`) hands a member a link that signs them in once; the
browser then carries a session cookie. Both are rows here, keyed by the SHA-256 of the secret, so
a copy of the database signs nobody in.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"


def upgrade() -> None:
    op.create_table(
        "web_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("user_name", sa.String(100), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("moderator", sa.Boolean(), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_web_tokens_expires", "web_tokens", ["expires_at"])
    # The gallery's kind filter pages a member's jobs of one kind newest first.
    op.create_index("ix_jobs_user_kind_created", "jobs", ["user_id", "kind", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_user_kind_created", table_name="jobs")
    op.drop_index("ix_web_tokens_expires", table_name="web_tokens")
    op.drop_table("web_tokens")
