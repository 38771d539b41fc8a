"""The body of one Ray Serve engine replica: a core, its line of jobs, and its own health.

A replica is to Ray Serve what the spawned worker is to `LocalEngine`: it loads the model once,
runs jobs on one thread (so CUDA state stays on one thread), and batches the jobs waiting in it
with the very same `JobLine` and `run_batch` the worker uses. Serve sends it up to
`max_ongoing_requests` jobs at once; those wait in the line, and the ones that can share a
denoising loop do.

Two signs of life leave the replica, because a hung core must not look busy forever:

- while a job waits or runs, its stream carries a `Heartbeat` every `heartbeat_s`, but only while
  the core thread has reported something within `hang_timeout_s`. A core stuck in a kernel stops
  the heartbeats, and the client's deadline cancels the job (`RayEngine`);
- `check_health`, which Serve calls every `health_check_period_s`, raises in the same case, so
  Serve kills the replica and starts a fresh one, as `LocalEngine` kills a hung worker.

Plain class on purpose: `RayEngine` wraps it with `serve.deployment`, so importing this module
needs neither Ray nor torch (the core brings torch, on the replica's node).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from engine.api import EngineConfig, EngineEvent, EngineRequest, Failed, Finished, ModelInfo
from engine.batching import JobLine
from engine.protocol import DEFAULT_CORE, Heartbeat, JobEvent
from engine.worker import JobTimer, load_core_class, run_batch

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _ReplicaJob:
    """One request waiting in (or running on) this replica, and the way back to its stream."""

    request: EngineRequest
    sent_at: float
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue[EngineEvent] = field(default_factory=asyncio.Queue)
    stop: threading.Event = field(default_factory=threading.Event)
    arrived_at: float = field(default_factory=time.time)

    def hooks(
        self, on_event: Callable[[], None]
    ) -> tuple[EngineRequest, Callable[[EngineEvent], None], Callable[[], bool]]:
        """`run_batch`'s view of the job, made when it starts (its timer starts then too)."""
        timer = JobTimer(sent_at=self.sent_at, arrived_at=self.arrived_at)

        def emit(event: EngineEvent) -> None:
            on_event()
            with contextlib.suppress(RuntimeError):  # the request's loop is gone: nobody listens
                self.loop.call_soon_threadsafe(self.events.put_nowait, timer.stamp(event))

        return self.request, emit, self.stop.is_set


class EngineReplica:
    """One model on one replica's device; `run` streams one job, `check_health` is for Serve."""

    def __init__(self, config: EngineConfig, core: str = DEFAULT_CORE) -> None:
        self._config = config
        self._core = load_core_class(core)(config)  # torch is imported here, on the replica's node
        self._info: ModelInfo = self._core.load()
        self._limit = config.jobs_per_batch(self._info.device)
        self._line: JobLine[_ReplicaJob] = JobLine(lambda job: job.request)
        self._busy = 0  # jobs taken by the core thread and not yet ended
        self._last_event = time.monotonic()
        self._thread = threading.Thread(target=self._serve, name="engine-core", daemon=True)
        self._thread.start()
        log.info(
            "replica ready: %s on %s, batches of up to %d", self._info.name, self._info.device, self._limit
        )

    def _serve(self) -> None:
        while (batch := self._line.next_batch(self._core, self._limit)) is not None:
            self._busy = len(batch)
            self._touch()
            try:
                run_batch(self._core, [job.hooks(self._touch) for job in batch])
            except Exception:  # run_batch ends every stream itself; this is a bug, keep serving
                log.exception("the replica's core loop failed")
            finally:
                self._busy = 0

    def _touch(self) -> None:
        self._last_event = time.monotonic()

    def _stuck_for(self) -> float:
        """Seconds the core has been silent while working on a job; 0 when it is idle or fine."""
        if not self._thread.is_alive():
            return float("inf")
        if not self._busy:
            return 0.0
        silent = time.monotonic() - self._last_event
        return silent if silent > self._config.hang_timeout_s else 0.0

    async def info(self) -> ModelInfo:
        return self._info

    async def check_health(self) -> None:
        """Serve's health check: a core silent past the deadline makes Serve replace this replica."""
        stuck = self._stuck_for()
        if stuck:
            raise RuntimeError(f"the engine core has sent nothing for {stuck:.0f} s while running a job")

    async def run(self, request: EngineRequest, sent_at: float) -> AsyncIterator[JobEvent | Heartbeat]:
        """Stream one job's events; a cancelled Serve request stops the job at its next step."""
        job = _ReplicaJob(request=request, sent_at=sent_at, loop=asyncio.get_running_loop())
        self._line.put(job)
        try:
            while True:
                try:
                    event = await asyncio.wait_for(job.events.get(), self._config.heartbeat_s)
                except TimeoutError:
                    if not self._stuck_for():
                        yield Heartbeat(sent_at=time.time())
                    continue
                yield JobEvent(event=event, sent_at=time.time())
                if isinstance(event, Finished | Failed):
                    break
        finally:
            job.stop.set()  # the client cancelled or went away: the job stops at its next step
