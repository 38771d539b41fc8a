"""The job history's tables as SQLAlchemy 2 typed models.

Models hold data and no I/O (their base, column type and enums are in storage/model_base.py,
re-exported here); the repositories (`storage/repositories.py`) do the queries. The SQL
stays portable (no SQLite-only types), so any SQLAlchemy async URL works unchanged. Discord ids
are 64-bit, hence BigInteger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage.model_base import (
    ANSWER_KINDS,
    Base,
    JobKind,
    JobStatus,
    ReportState,
    UtcDateTime,
    new_job_id,
    utcnow,
)


def _tz() -> UtcDateTime:
    return UtcDateTime()


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_job_id)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    source: Mapped[str] = mapped_column(String(16), default="discord")  # discord | console

    user_id: Mapped[int] = mapped_column(BigInteger)
    user_name: Mapped[str] = mapped_column(String(100), default="")
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    message_id: Mapped[int | None] = mapped_column(BigInteger)  # the latest result message; all: job_messages

    raw_prompt: Mapped[str] = mapped_column(Text, default="")
    prompt: Mapped[str] = mapped_column(Text, default="")  # canonical form, str(Prompt)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # parsed parameters, action details
    model: Mapped[str] = mapped_column(String(200), default="")
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(BigInteger)  # the grid's seed; per-cell seeds are on images

    parent_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    parent_index: Mapped[int | None] = mapped_column(Integer)  # the parent's cell (0-3), if any

    created_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(_tz())
    finished_at: Mapped[datetime | None] = mapped_column(_tz())
    queue_position: Mapped[int | None] = mapped_column(Integer)  # at submission
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    timings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_by: Mapped[int | None] = mapped_column(BigInteger)
    hidden_reason: Mapped[str | None] = mapped_column(Text)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)  # the author deleted the result
    blocked_rule: Mapped[str | None] = mapped_column(Text)  # the banned-word rule that matched
    # The process holding the job while it is pending (see storage/ownership.py), and until when.
    owner_id: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(_tz())

    images: Mapped[list[Image]] = relationship(
        back_populates="job", order_by="Image.index", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_jobs_status_created", "status", "created_at"),
        Index("ix_jobs_user_created", "user_id", "created_at"),
        Index("ix_jobs_user_kind_created", "user_id", "kind", "created_at"),
        Index("ix_jobs_guild_created", "guild_id", "created_at"),
        Index("ix_jobs_created_id", "created_at", "id"),
        Index("ix_jobs_parent", "parent_id"),
        Index("ix_jobs_message", "message_id"),
        Index("ix_jobs_owner", "owner_id"),
    )

    @property
    def cells(self) -> list[Image]:
        """The single images (grid cells or the one image), in order."""
        return [image for image in self.images if image.index >= 0]

    @property
    def grid(self) -> Image | None:
        return next((image for image in self.images if image.index == GRID_INDEX), None)


GRID_INDEX = -1  # Image.index of a job's 2x2 grid picture


class Process(Base):
    """A running bot or console, with a lease it renews: how a second bot sees the first."""

    __tablename__ = "processes"

    owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # bot | console
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)
    lease_until: Mapped[datetime] = mapped_column(_tz())


class Image(Base):
    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)  # 0-3 for cells, GRID_INDEX for the grid
    path: Mapped[str] = mapped_column(String(500))  # relative to the data directory
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    bytes: Mapped[int] = mapped_column(Integer)

    job: Mapped[Job] = relationship(back_populates="images")

    __table_args__ = (UniqueConstraint("job_id", "index", name="uq_images_job_index"),)


class JobMessage(Base):
    """Which job a Discord message shows.

    A job can be shown by several messages (the result, a re-post after an edit failed, a
    `/show` copy in another channel); this table makes "which job is this message?" one indexed,
    portable lookup, and keeps each message's own channel so hide/unhide can edit every copy
    where it is. `channel_id` is None only on rows written before revision 0002 (those messages
    are in the job's channel).
    """

    __tablename__ = "job_messages"

    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    channel_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)


class Ban(Base):
    __tablename__ = "bans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)  # None: everywhere (console, DMs)
    reason: Mapped[str] = mapped_column(Text, default="")
    moderator_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(_tz())  # None: until lifted
    lifted_at: Mapped[datetime | None] = mapped_column(_tz())
    lifted_by: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_bans_user_guild", "user_id", "guild_id"),)


class BannedWord(Base):
    __tablename__ = "banned_words"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    pattern: Mapped[str] = mapped_column(String(500))
    is_regex: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)

    __table_args__ = (UniqueConstraint("guild_id", "pattern", "is_regex", name="uq_banned_words"),)


class Report(Base):
    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    reporter_id: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default=ReportState.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)
    resolved_by: Mapped[int | None] = mapped_column(BigInteger)
    resolved_at: Mapped[datetime | None] = mapped_column(_tz())

    __table_args__ = (Index("ix_reports_guild_state", "guild_id", "state", "created_at"),)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    moderator_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(40))  # hide, unhide, ban, unban, word_add, ...
    target_job_id: Mapped[str | None] = mapped_column(String(36))
    target_user_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)

    __table_args__ = (Index("ix_audit_guild_created", "guild_id", "created_at"),)


class GuildSettings(Base):
    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    allowed_channel_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)  # empty: every channel
    spoiler_channel_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    author_only_buttons: Mapped[bool] = mapped_column(Boolean, default=False)
    moderator_role_id: Mapped[int | None] = mapped_column(BigInteger)
    log_channel_id: Mapped[int | None] = mapped_column(BigInteger)
    max_running_per_user: Mapped[int | None] = mapped_column(Integer)  # None: the global default
    max_queued_per_user: Mapped[int | None] = mapped_column(Integer)
    fast_seconds: Mapped[int | None] = mapped_column(Integer)  # Fast GPU-seconds per period; None: unlimited
    fast_period_hours: Mapped[int | None] = mapped_column(Integer)  # None: 720 (30 days)
    fast_role_seconds: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # role id -> seconds
    allow_stealth: Mapped[bool] = mapped_column(Boolean, default=False)  # members may choose Stealth


class WebToken(Base):
    """A sign-in link or a web session, stored by the SHA-256 of its secret (never the secret).

    `purpose` "link": the one-time link `/web` hands out (used once: `used_at` is set when it is
    redeemed). "session": the browser's cookie after sign-in. Both name the Discord member and the
    guild they act in, and whether they have moderator rights there.
    """

    __tablename__ = "web_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # link | session
    user_id: Mapped[int] = mapped_column(BigInteger)
    user_name: Mapped[str] = mapped_column(String(100), default="")
    guild_id: Mapped[int | None] = mapped_column(BigInteger)
    moderator: Mapped[bool] = mapped_column(Boolean, default=False)
    target: Mapped[str | None] = mapped_column(String(200))  # where the link leads after sign-in
    created_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(_tz())
    used_at: Mapped[datetime | None] = mapped_column(_tz())

    __table_args__ = (Index("ix_web_tokens_expires", "expires_at"),)


class UserPrefs(Base):
    __tablename__ = "user_prefs"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    suffix: Mapped[str] = mapped_column(Text, default="")  # /prefer suffix


class MemberSettings(Base):
    """A member's /settings on one server (guild 0: outside any server, e.g. the console).

    Defaults for the member's prompts, which a prompt's own parameters override. A missing row
    means every default; `reset` deletes the row.
    """

    __tablename__ = "member_settings"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    remix: Mapped[bool] = mapped_column(Boolean, default=False)
    stylize: Mapped[int | None] = mapped_column(Integer)  # None: the prompt language's default
    raw: Mapped[bool] = mapped_column(Boolean, default=False)  # --style raw by default
    variation: Mapped[str] = mapped_column(String(8), default="high")  # high: V1-V4 strong; low: subtle
    version: Mapped[str | None] = mapped_column(String(64))  # a configured --v name
    speed: Mapped[str] = mapped_column(String(8), default="fast")  # fast | relax | turbo
    lora: Mapped[str | None] = mapped_column(String(64))  # an installed LoRA style's name
    stealth: Mapped[bool] = mapped_column(Boolean, default=False)  # jobs seen only by author and mods
    updated_at: Mapped[datetime] = mapped_column(_tz(), default=utcnow, onupdate=utcnow)


class PromptOption(Base):
    """A member's `/prefer option`: `--name` in their prompts stands for `value` (parameters)."""

    __tablename__ = "prompt_options"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")


class FastUsage(Base):
    """A member's Fast time on one server in one budget period: spent (engine seconds) and granted."""

    __tablename__ = "fast_usage"

    user_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    period_start: Mapped[datetime] = mapped_column(_tz(), primary_key=True)
    used_s: Mapped[float] = mapped_column(Float, default=0.0)
    granted_s: Mapped[float] = mapped_column(Float, default=0.0)


__all__ = [
    "ANSWER_KINDS",
    "GRID_INDEX",
    "AuditEntry",
    "Ban",
    "BannedWord",
    "Base",
    "FastUsage",
    "GuildSettings",
    "Image",
    "Job",
    "JobKind",
    "JobMessage",
    "JobStatus",
    "MemberSettings",
    "PromptOption",
    "Report",
    "ReportState",
    "UserPrefs",
    "UtcDateTime",
    "WebToken",
    "new_job_id",
    "utcnow",
]
