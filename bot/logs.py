"""Logging setup: every line of a job's life carries its job id; optional JSON lines.

The job id lives in a `contextvars` variable rather than being passed to every log call: asyncio
copies the context into each task, so whatever a job's task (and the code it calls) logs is
tagged with that job, and concurrent jobs never mix up their ids.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TextIO

job_id_var: ContextVar[str | None] = ContextVar("imagine_job_id", default=None)

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [job %(job_id)s] %(message)s"
_HANDLER_NAME = "imagine"


@contextmanager
def job_context(job_id: str | None) -> Iterator[None]:
    """Tag every log record made inside the block (and in tasks it starts) with `job_id`."""
    token = job_id_var.set(job_id)
    try:
        yield
    finally:
        job_id_var.reset(token)


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
    """One JSON object per line: time, level, logger, job_id, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "job_id": _job_id(record),
            "message": record.getMessage(),
        }
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
