"""The messages that travel over the pipe between `LocalEngine` and its worker process.

A small, closed set of frozen dataclasses (after replicate/cog's worker): the parent sends
`RunJob`, `CancelJob` and `Shutdown`; the child answers with `Ready` or `LoadFailed` once,
then `Heartbeat`s, `JobEvent`s and `WorkerLog`s. Engine events travel inside `JobEvent` as the
very dataclasses of `engine.api`, so images stay raw RGB bytes end to end: pickling a `bytes`
object is one copy, never a re-encode.

Times that cross the process boundary are `time.time()` stamps (one clock for both processes on
the machine), used only to measure queue wait and transfer.

No torch here: the parent imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.api import EngineEvent, EngineRequest, ModelInfo

# ---------------------------------------------------------------------------------------------
# parent -> child
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunJob:
    """Run one request; `sent_at` lets the worker report how long the job waited for it."""

    request: EngineRequest
    sent_at: float


@dataclass(frozen=True)
class CancelJob:
    """Stop this job at the next denoising step (or before it starts, if it is still queued)."""

    job_id: str


@dataclass(frozen=True)
class Shutdown:
    """Finish nothing more: stop the running job and exit cleanly."""


ParentMessage = RunJob | CancelJob | Shutdown

# ---------------------------------------------------------------------------------------------
# child -> parent
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """The model is loaded and warmed up; jobs may come."""

    info: ModelInfo
    pid: int
    load_s: float


@dataclass(frozen=True)
class LoadFailed:
    """The model could not be loaded; `reason` is meant for the operator, as is."""

    reason: str


@dataclass(frozen=True)
class Heartbeat:
    """Sent every `EngineConfig.heartbeat_s` from its own thread: the process is alive and not frozen."""

    sent_at: float


@dataclass(frozen=True)
class JobEvent:
    """One engine event of one job; `sent_at` measures the pipe transfer of the payload."""

    event: EngineEvent
    sent_at: float


@dataclass(frozen=True)
class WorkerLog:
    """A log record of the worker, re-emitted by the parent under the same logger name.

    `job_id` is the job the worker was running when the record was made (None outside a job);
    the parent puts it on the re-emitted record, so the bot's logs tag engine lines like its own.
    """

    name: str
    level: int
    message: str
    job_id: str | None = None


ChildMessage = Ready | LoadFailed | Heartbeat | JobEvent | WorkerLog

DEFAULT_CORE = "engine.core:EngineCore"
"""Where the worker finds its core class (`module:attribute`); the real `EngineCore` by default."""
