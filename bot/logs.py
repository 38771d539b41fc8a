"""Logging setup: every line of a job's life carries its job id; optional JSON lines.

The job (its id, and the user, guild and kind when known) lives in a `contextvars` variable
rather than being passed to every log call: asyncio copies the context into each task, so
whatever a job's task (and the code it calls) logs is tagged with that job, and concurrent jobs
never mix up their ids. Lines relayed from the engine process carry only the job id; the tags
of recent jobs are remembered here, so those lines get the user, guild and kind too.
"""

from __future__ import annotations

import json
import logging
import sys
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

job_id_var: ContextVar[str | None] = ContextVar("imagine_job_id", default=None)
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True)
class JobTags:
    """Who and what a job is, for log collectors: filter by user, guild or kind, not just by id."""

    user_id: int | None = None
    guild_id: int | None = None
    kind: str | None = None


_job_tags: ContextVar[JobTags | None] = ContextVar("imagine_job_tags", default=None)
_KNOWN_TAGS = 4096  # recent jobs whose tags relayed engine lines can find
_recent_tags: OrderedDict[str, JobTags] = OrderedDict()

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [job %(job_id)s] %(message)s"
_HANDLER_NAME = "imagine"


@contextmanager
def job_context(
    job_id: str | None, *, user_id: int | None = None, guild_id: int | None = None, kind: str | None = None
) -> Iterator[None]:
    """Tag every log record made inside the block (and in tasks it starts) with `job_id`.

    `user_id`, `guild_id` and `kind` go into JSON lines as well; a block that does not know them
    (a nested one) keeps what an outer block of the same job said.
    """
    tags = JobTags(user_id, guild_id, kind)
    if tags == JobTags() and job_id is not None:
        known = _job_tags.get() if job_id_var.get() == job_id else _recent_tags.get(job_id)
        tags = known if known is not None else tags
    elif job_id is not None:
        _remember(job_id, tags)
    token = job_id_var.set(job_id)
    tags_token = _job_tags.set(tags)
    try:
        yield
    finally:
        _job_tags.reset(tags_token)
        job_id_var.reset(token)


def _remember(job_id: str, tags: JobTags) -> None:
    _recent_tags[job_id] = tags
    _recent_tags.move_to_end(job_id)
    while len(_recent_tags) > _KNOWN_TAGS:
        _recent_tags.popitem(last=False)


def _tags(record: logging.LogRecord, job_id: str | None) -> JobTags | None:
    if job_id is None:
        return None
    if getattr(record, "job_id", None) is None and job_id_var.get() == job_id:
        return _job_tags.get()
    return _recent_tags.get(job_id)


def _job_id(record: logging.LogRecord) -> str | None:
    """The record's job: one it carries (the engine worker's relayed lines), else the current job's.

    Read when the record is formatted, which happens in the logging call's own context, so the
    contextvar is the caller's. The record itself is never changed: other handlers (pytest's,
    an operator's) see it exactly as it was made.
    """
    return getattr(record, "job_id", None) or job_id_var.get()


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT` lines; `[job -]` outside a job."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        tagged = logging.makeLogRecord(record.__dict__)  # a copy: the original stays untouched
        tagged.job_id = _job_id(record) or "-"
        return super().format(tagged)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, job_id, message (and the exception, if any).

    A record about a job also has `user_id`, `guild_id` and `kind` when the job's context gave them.
    """

    def format(self, record: logging.LogRecord) -> str:
        job_id = _job_id(record)
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "job_id": job_id,
            "message": record.getMessage(),
        }
        tags = _tags(record, job_id)
        if tags is not None:
            entry.update(user_id=tags.user_id, guild_id=tags.guild_id, kind=tags.kind)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def remove_logging() -> None:
    """Take our handler off the root logger (a caller whose stream is about to go away)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)


def setup_logging(level: str | int = "INFO", json_lines: bool = False, stream: TextIO | None = None) -> None:
    """Configure the root logger once (calling again replaces our handler, never stacks a second)."""
    remove_logging()
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
    # Libraries that chatter at INFO would drown the job lines.
    for noisy in ("sqlalchemy.engine", "aiosqlite", "alembic", "discord.gateway", "discord.http"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
