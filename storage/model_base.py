"""What the tables are built on: the declarative base, the UTC timestamp column, the enums.

Split from storage/models.py, which re-exports all of it: import these from `storage.models`.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    return str(uuid.uuid4())


class JobKind(enum.StrEnum):
    IMAGINE = "imagine"
    REROLL = "reroll"
    UPSCALE = "upscale"  # U1-U4: one cell separated out as a single image (no engine work)
    UPSCALE_SUBTLE = "upscale_subtle"  # Upscale (Subtle): 2x
    UPSCALE_CREATIVE = "upscale_creative"  # Upscale (Creative): 2x
    VARY = "vary"  # V1-V4 on a grid cell
    VARY_SUBTLE = "vary_subtle"
    VARY_STRONG = "vary_strong"
    ZOOM = "zoom"
    PAN = "pan"
    SQUARE = "square"
    BLEND = "blend"  # /blend: four images mixing 2-5 uploaded ones (kept under inputs/)
    # Answers with no picture of their own: /shorten's ranking and /describe's prompts, in params
    SHORTEN = "shorten"
    DESCRIBE = "describe"
    REGION = "region"  # Vary (Region): a masked area of an upscaled image redrawn (four images)


# The kinds whose result is text in `params` (see `Store.record_answer`), never images.
ANSWER_KINDS = frozenset({JobKind.SHORTEN.value, JobKind.DESCRIBE.value})


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BLOCKED = "blocked"  # refused by moderation; kept so moderators see attempts

    @property
    def finished(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.BLOCKED)


class ReportState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"  # looked at, nothing done
    ACTIONED = "actioned"  # the job was hidden or the author banned


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}  # noqa: RUF012 (read by SQLAlchemy)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite has no timezone-aware type: SQLAlchemy writes the wall-clock digits and drops the
    offset, so a value in another zone would be stored wrong and values come back naive, while
    PostgreSQL returns aware ones. Normalising here makes comparisons and keyset cursors behave
    the same on every backend. A naive value is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    # What comes back from the database is normalised the same way (SQLite returns naive values).
    process_result_value = process_bind_param
