"""Query and result shapes of the job history: the history search, its pages, a job's lineage.

History pages use keyset pagination: the cursor is the (created_at, id) of the last job shown, and
the next page asks for jobs strictly older than it. Unlike OFFSET, that costs the same on page 1
and page 5,000, and a job created while someone pages does not shift or repeat rows.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from storage.errors import InvalidInputError
from storage.models import Job, JobKind, JobStatus

MAX_PAGE = 500  # the console allows up to 500 rows at once


@dataclass(frozen=True)
class HistoryQuery:
    """What a history search asks for; every filter is optional and they combine with AND.

    `text` matches the raw or canonical prompt, case-insensitively, as plain text (`%` and `_`
    are literal). `status` is one status or several. `since` is inclusive, `until` exclusive.
    `before` is the `next_cursor` of the previous page.
    """

    user_id: int | None = None
    guild_id: int | None = None
    text: str | None = None
    status: str | Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 20
    before: str | None = None
    include_hidden: bool = True  # moderators see hidden jobs; a member's own view may not
    kind: str | Sequence[str] | None = None  # one job kind or several (storage.models.JobKind)
    hidden: bool | None = None  # True: only hidden jobs, False: only visible ones (the desk's filter)
    reported: bool = False  # only jobs with an open report

    def kinds(self) -> list[str] | None:
        if self.kind is None:
            return None
        values = [self.kind] if isinstance(self.kind, str) else list(self.kind)
        known = {kind.value for kind in JobKind}
        for value in values:
            if value not in known:
                raise InvalidInputError(f"unknown job kind {value!r}; expected one of {sorted(known)}")
        return values

    def statuses(self) -> list[str] | None:
        if self.status is None:
            return None
        values = [self.status] if isinstance(self.status, str) else list(self.status)
        known = {status.value for status in JobStatus}
        for value in values:
            if value not in known:
                raise InvalidInputError(f"unknown job status {value!r}; expected one of {sorted(known)}")
        return values

    def checked_limit(self) -> int:
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or not 1 <= self.limit <= MAX_PAGE:
            raise InvalidInputError(
                f"history limit must be a whole number from 1 to {MAX_PAGE}, got {self.limit!r}"
            )
        return self.limit


@dataclass(frozen=True)
class HistoryPage:
    """One page of history, newest first; `next_cursor` is None on the last page."""

    jobs: list[Job]
    next_cursor: str | None = None


@dataclass(frozen=True)
class Lineage:
    """A job with where it came from (root first) and everything derived from it (breadth first)."""

    ancestors: list[Job]
    job: Job
    descendants: list[Job] = field(default_factory=list)


def encode_cursor(created_at: datetime, job_id: str) -> str:
    """An opaque, URL-safe token for "after this job" (it fits in a Discord custom_id)."""
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    raw = f"{created_at.astimezone(UTC).isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        stamp, job_id = text.split("|", 1)
        created_at = datetime.fromisoformat(stamp)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInputError(f"history cursor {cursor!r} is not one this store gave out") from exc
    if created_at.tzinfo is None or not job_id:
        raise InvalidInputError(f"history cursor {cursor!r} is not one this store gave out")
    return created_at, job_id


def like_pattern(text: str) -> str:
    """A LIKE pattern that finds `text` anywhere, with the user's `%`, `_` and `\\` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


__all__ = [
    "MAX_PAGE",
    "HistoryPage",
    "HistoryQuery",
    "Lineage",
    "decode_cursor",
    "encode_cursor",
    "like_pattern",
]
