"""The engine's child process: load the model once, then run jobs one at a time.

`LocalEngine` spawns `main` in a fresh interpreter (CUDA does not survive a fork). Three threads:

- the main thread loads the core and runs jobs from a queue, in order, so the GPU sees one job
  at a time and CUDA state stays on one thread;
- a listener thread reads the pipe: `RunJob` goes to the queue, `CancelJob` sets a flag that the
  job's `should_stop` reads at every denoising step, `Shutdown` ends the loop. Reading in its own
  thread is what lets a cancel reach a job that is busy on the GPU;
- a heartbeat thread tells the parent every `heartbeat_s` that the process is alive. A process
  that is frozen (or holds the GIL forever) stops sending, and the parent's supervisor restarts it.

If the parent goes away (EOF on the pipe) the child exits at once: a job nobody will receive is
not worth the GPU time, and an orphan would hold the GPU's memory.

torch is imported only here and below (through the core), never by the parent.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import faulthandler
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from engine.api import CANCELLED, EngineConfig, EngineEvent, EngineRequest, Failed, Finished
from engine.batching import JobLine
from engine.protocol import (
    DEFAULT_CORE,
    CancelJob,
    ChildMessage,
    Heartbeat,
    JobEvent,
    LoadFailed,
    Ready,
    RunJob,
    Shutdown,
    WorkerLog,
)

log = logging.getLogger(__name__)

# The job the main thread is running: log records made meanwhile carry its id to the parent.
current_job: contextvars.ContextVar[str | None] = contextvars.ContextVar("engine_job_id", default=None)

NO_RESULT = "The engine ended this job without a result; this is a bug in the engine."


def main(
    conn: Connection, config: EngineConfig, core: str = DEFAULT_CORE, log_level: int = logging.INFO
) -> None:
    """The spawned process's entry point (a module-level function, so `spawn` can pickle it)."""
    # Ctrl-C in a terminal reaches the whole process group; the parent decides how to shut down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()  # a segfault in a CUDA library leaves a traceback on stderr
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1 <pid>` prints every thread's stack
    worker = _Worker(conn, config)
    _forward_logs(worker.send, log_level)
    code = worker.serve(core)
    # Everything the parent needs has been sent (the pipe writes are synchronous). A normal exit
    # would now tear the interpreter down module by module, which with torch and diffusers loaded
    # takes seconds, and the parent's close() waits for it; the OS frees memory and the GPU anyway.
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def load_core_class(path: str) -> Callable[[EngineConfig], Any]:
    """Import `module:attribute` (the core class) only now, inside the child: torch comes with it."""
    module_name, _, attribute = path.partition(":")
    if not attribute:
        raise ValueError(f"core must look like 'module:Class', got {path!r}")
    return getattr(importlib.import_module(module_name), attribute)


class _Worker:
    def __init__(self, conn: Connection, config: EngineConfig) -> None:
        self._conn = conn
        self._config = config
        self._send_lock = threading.Lock()  # heartbeat, log and job threads share the pipe
        # (job, when it arrived): the arrival splits the request's pipe transfer from its wait here
        self._jobs: JobLine[tuple[RunJob, float]] = JobLine(lambda item: item[0].request)
        self._state_lock = threading.Lock()
        self._known: set[str] = set()  # queued or running job ids
        self._cancelled: set[str] = set()
        self._stopping = threading.Event()
        self._loaded = threading.Event()

    # -- pipe ------------------------------------------------------------------------------------

    def send(self, message: ChildMessage) -> None:
        try:
            with self._send_lock:
                self._conn.send(message)
        except (BrokenPipeError, EOFError, OSError):
            os._exit(0)  # the parent is gone: nobody is waiting for anything we make

    def _listen(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone
            if isinstance(message, RunJob):
                with self._state_lock:
                    self._known.add(message.request.job_id)
                self._jobs.put((message, time.time()))
            elif isinstance(message, CancelJob):
                with self._state_lock:
                    # A cancel for a job that already ended is dropped, so the set stays small.
                    if message.job_id in self._known:
                        self._cancelled.add(message.job_id)
            elif isinstance(message, Shutdown):
                if not self._loaded.is_set():
                    os._exit(0)  # a half-done load holds nothing worth a clean exit; don't finish it
                self._stopping.set()
                self._jobs.close()
                return
            else:
                log.error("worker got an unknown message %r; ignored", type(message).__name__)

    def _beat(self) -> None:
        interval = max(self._config.heartbeat_s, 0.01)
        while True:
            self.send(Heartbeat(sent_at=time.time()))
            if self._stopping.wait(interval):
                return

    # -- life ------------------------------------------------------------------------------------

    def serve(self, core_path: str) -> int:
        """Load, say ready, run jobs until told to stop. Returns the process exit code."""
        # Both threads start before the (slow) load: heartbeats show the parent that a long load is
        # alive, and a shutdown asked for during the load is seen.
        threading.Thread(target=self._listen, name="engine-listener", daemon=True).start()
        threading.Thread(target=self._beat, name="engine-heartbeat", daemon=True).start()

        began = time.perf_counter()
        try:
            core = load_core_class(core_path)(self._config)
            info = core.load()
        except Exception as error:  # any load failure is reported, whatever its type
            log.exception("loading model %r failed", self._config.model)
            self.send(LoadFailed(reason=_describe(error)))
            return 1
        load_s = time.perf_counter() - began
        log.info("model %s loaded on %s in %.1f s (pid %d)", info.name, info.device, load_s, os.getpid())
        self._loaded.set()
        self.send(Ready(info=info, pid=os.getpid(), load_s=load_s))

        limit = self._config.jobs_per_batch(info.device)
        while (batch := self._jobs.next_batch(core, limit)) is not None:
            if len(batch) == 1:
                self._run(core, *batch[0])
            else:
                self._run_batch(core, batch)
        self._stopping.set()
        return 0

    def _job_hooks(
        self, job: RunJob, arrived_at: float
    ) -> tuple[Callable[[EngineEvent], None], Callable[[], bool]]:
        """Where a job's events go (timed, over the pipe) and whether it should stop."""
        job_id = job.request.job_id
        timer = JobTimer(sent_at=job.sent_at, arrived_at=arrived_at)

        def send(event: EngineEvent) -> None:
            if isinstance(event, Finished | Failed):
                # Forgotten before the outcome goes out: once the parent has it, it may send the
                # same job id again (a retry), and that new run's cancel must be kept.
                self._forget(job_id)
            self.send(JobEvent(event=timer.stamp(event), sent_at=time.time()))

        def should_stop() -> bool:
            return self._stopping.is_set() or job_id in self._cancelled

        return send, should_stop

    def _forget(self, job_id: str) -> None:
        with self._state_lock:
            self._known.discard(job_id)
            self._cancelled.discard(job_id)

    def _run(self, core: Any, job: RunJob, arrived_at: float) -> None:
        job_id = job.request.job_id
        send, should_stop = self._job_hooks(job, arrived_at)
        token = current_job.set(job_id)
        try:
            run_job(core, job.request, send, should_stop)
        finally:
            current_job.reset(token)

    def _run_batch(self, core: Any, batch: list[tuple[RunJob, float]]) -> None:
        ids = [job.request.job_id for job, _ in batch]
        log.info("running %d jobs in one batch: %s", len(batch), ", ".join(ids))
        run_batch(core, [(job.request, *self._job_hooks(job, arrived_at)) for job, arrived_at in batch])


class _Guard:
    """One job's stream, kept well-formed whatever the core does: exactly one final event."""

    def __init__(self, request: EngineRequest, emit: Callable[[EngineEvent], None]) -> None:
        self.job_id = request.job_id
        self._emit = emit
        self.ended = False

    def emit(self, event: EngineEvent) -> None:
        if self.ended or event.job_id != self.job_id:
            log.warning("job %s: dropped a stray %s event", self.job_id, type(event).__name__)
            return
        if isinstance(event, Finished | Failed):
            self.ended = True
        self._emit(event)

    def end_after(self, error: Exception | None, stopped: bool) -> None:
        """Close a stream the core left open: cancelled, refused, or the error that stopped it."""
        if self.ended:
            return
        if error is None:
            self.emit(Failed(job_id=self.job_id, reason=NO_RESULT))
        elif stopped:  # the core's own way of stopping (an exception of its own)
            self.emit(Failed(job_id=self.job_id, reason=CANCELLED))
        elif isinstance(error, ValueError):  # the core's "cannot do this request"
            self.emit(Failed(job_id=self.job_id, reason=str(error)))
        else:
            log.error("job %s failed", self.job_id, exc_info=error)
            self.emit(Failed(job_id=self.job_id, reason=f"The engine failed on this job: {_describe(error)}"))


def run_job(
    core: Any,
    request: EngineRequest,
    emit: Callable[[EngineEvent], None],
    should_stop: Callable[[], bool],
) -> None:
    """Run one request on the core so that exactly one `Finished` or `Failed` comes out.

    Whatever the core does (raise, stop on a cancel its own way, return without a result), the
    caller's stream ends cleanly and the worker stays ready for the next job. Shared by the spawned
    worker and the Ray Serve replica.
    """
    run_batch(core, [(request, emit, should_stop)])


def run_batch(
    core: Any, jobs: list[tuple[EngineRequest, Callable[[EngineEvent], None], Callable[[], bool]]]
) -> None:
    """`run_job` for several jobs the core runs together (`core.run_batch`); one alone runs alone."""
    guards = [_Guard(request, emit) for request, emit, _ in jobs]
    live = []
    for guard, (request, _, should_stop) in zip(guards, jobs, strict=True):
        if should_stop():  # cancelled while it waited in the queue
            guard.emit(Failed(job_id=guard.job_id, reason=CANCELLED))
        else:
            live.append((guard, request, should_stop))
    if not live:
        return
    error: Exception | None = None
    try:
        if len(live) == 1:
            guard, request, should_stop = live[0]
            core.run(request, guard.emit, should_stop)
        else:
            core.run_batch([(request, guard.emit, should_stop) for guard, request, should_stop in live])
    except Exception as exc:
        error = exc
    for guard, _, should_stop in live:
        guard.end_after(error, should_stop())


class JobTimer:
    """Adds the worker's side of the timings to a job's `Finished` (see `engine.local._Job.timings`)."""

    def __init__(self, sent_at: float, arrived_at: float) -> None:
        self.began = time.time()
        self.request_transfer_s = max(arrived_at - sent_at, 0.0)
        self.worker_queue_s = max(self.began - arrived_at, 0.0)

    def stamp(self, event: EngineEvent) -> EngineEvent:
        if not isinstance(event, Finished):
            return event
        timings = {
            **event.timings,
            "request_transfer_s": self.request_transfer_s,
            "worker_queue_s": self.worker_queue_s,
            "worker_run_s": time.time() - self.began,
        }
        return dataclasses.replace(event, timings=timings)


def _describe(error: BaseException) -> str:
    """A one-line reason; a `ValueError`'s message is written for people, so it stands alone."""
    text = str(error).strip()
    if isinstance(error, ValueError) and text:
        return text
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _PipeLogHandler(logging.Handler):
    """Sends the worker's log records to the parent, which logs them where the operator looks."""

    def __init__(self, send: Callable[[ChildMessage], None], level: int) -> None:
        super().__init__(level)
        self._send = send
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            job_id = getattr(record, "job_id", None) or current_job.get()
            self._send(
                WorkerLog(name=record.name, level=record.levelno, message=self.format(record), job_id=job_id)
            )
        except Exception:
            self.handleError(record)


def _forward_logs(send: Callable[[ChildMessage], None], level: int) -> None:
    root = logging.getLogger()
    root.handlers[:] = [_PipeLogHandler(send, level)]
    root.setLevel(level)
