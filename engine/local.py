"""`LocalEngine`: the engine in a spawned child process on this machine, supervised.

The parent side never imports torch: it spawns `engine.worker.main` (spawn, never fork: CUDA
does not survive a fork), waits for the child's `Ready`, and exchanges the typed messages of
`engine.protocol` over one pipe.

Threads and the event loop, per worker process:

- a *reader* thread blocks in `multiprocessing.connection.wait` on the pipe and the process's
  sentinel, and hands each message to the event loop with `call_soon_threadsafe`: no polling,
  and a message wakes its consumer at once;
- a *sender* thread writes the parent's messages in order, so a large source image never blocks
  the event loop and a cancel can never overtake the job it cancels.

The supervisor is the reader thread: EOF on the pipe or the process's exit is a dead worker; no
message at all (the child sends a heartbeat every `heartbeat_s`) for `hang_timeout_s` is a hung
worker, which is killed. Either way the jobs it held fail with `retryable=True` and a sentence a
user can read, and a fresh worker is started; the next job runs on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

from engine.api import (
    CANCELLED,
    EngineConfig,
    EngineError,
    EngineEvent,
    EngineRequest,
    Failed,
    Finished,
    ModelInfo,
)
from engine.batching import slots_for
from engine.protocol import (
    DEFAULT_CORE,
    CancelJob,
    JobEvent,
    LoadFailed,
    Ready,
    RunJob,
)
from engine.worker_process import STOP_TIMEOUT_S, WorkerProcess, live_workers

log = logging.getLogger(__name__)

CRASHED = (
    "The engine stopped unexpectedly while working on this job; it has been restarted, "
    "so trying again should work."
)
HUNG = (
    "The engine stopped responding while working on this job; it has been restarted, "
    "so trying again should work."
)
LOST_BEFORE_START = "The engine restarted before this job began; trying again should work."
SHUT_DOWN = "The engine was shut down before this job finished."


class LocalEngine:
    """An `EngineClient` running the engine core in a supervised child process.

    `slots` is how many jobs the dispatcher keeps in flight here; by default twice as many as
    share one batch on the model's device (`EngineConfig.jobs_per_batch`: 4 on a GPU, so 8; 1 on
    a CPU, where nothing batches). The child runs jobs in order; imagine and vary jobs of one size
    that wait together run as one batch, and any other job already waiting inside the child hides
    the round trip between jobs. `core` names the core class (`module:Class`) the child loads;
    the real `EngineCore` unless you wrap it.
    """

    def __init__(
        self, config: EngineConfig | None = None, *, slots: int | None = None, core: str = DEFAULT_CORE
    ) -> None:
        if slots is not None and slots < 1:
            raise ValueError(f"slots must be at least 1, got {slots}")
        if config is not None and (config.heartbeat_s <= 0 or config.hang_timeout_s <= config.heartbeat_s):
            raise ValueError(
                "EngineConfig needs heartbeat_s > 0 and hang_timeout_s > heartbeat_s, got "
                f"heartbeat_s={config.heartbeat_s}, hang_timeout_s={config.hang_timeout_s}"
            )
        self._config = config or EngineConfig()
        self._slots = slots
        self._core = core
        self._context = multiprocessing.get_context("spawn")
        self._worker: WorkerProcess | None = None
        self._starting: asyncio.Task[ModelInfo] | None = None
        self._info: ModelInfo | None = None
        self._jobs: dict[str, _Job] = {}
        self._closed = False
        self._generation = 0
        self.restarts = 0
        """How many times a dead or hung worker was replaced (for logs and tests)."""

    # -- EngineClient ----------------------------------------------------------------------------

    @property
    def slots(self) -> int:
        if self._slots is not None:
            return self._slots
        # Known once the model has loaded; the dispatcher asks only after `start`. With batching,
        # twice a batch: while one batch runs, the next one gathers inside the worker.
        batch = self._config.jobs_per_batch(self._info.device) if self._info is not None else 1
        return slots_for(batch)

    @property
    def info(self) -> ModelInfo | None:
        """The loaded model's facts, once `start` has succeeded."""
        return self._info

    @property
    def worker_pid(self) -> int | None:
        """The process id of the current worker (for operators' tools and tests)."""
        worker = self._worker
        return worker.process.pid if worker is not None else None

    async def start(self) -> ModelInfo:
        """Spawn the worker and wait until its model is loaded; idempotent.

        A model that cannot be loaded raises `EngineError` with the child's reason; calling
        `start` again tries again.
        """
        if self._closed:
            raise EngineError("The engine is closed.")
        worker = self._worker
        if worker is not None and _is_ready(worker):
            return worker.ready.result()
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._spawn())
        return await asyncio.shield(self._starting)

    async def ping(self) -> bool:
        """True while a loaded worker process is alive (the readiness check); never starts one."""
        worker = self._worker
        return not self._closed and worker is not None and _is_ready(worker) and worker.process.is_alive()

    async def submit(self, request: EngineRequest) -> AsyncIterator[EngineEvent]:
        """Run one request; yields `Started`, `Progress`..., then exactly one `Finished`/`Failed`.

        Leaving the iteration early cancels the job in the worker.
        """
        if not isinstance(request, EngineRequest):
            raise TypeError(f"not an engine request: {type(request).__name__}")
        if self._closed:
            raise EngineError("The engine is closed.")
        job_id = request.job_id
        if job_id in self._jobs:
            raise EngineError(f"Job {job_id} is already running in this engine.")
        job = _Job(request=request, events=asyncio.Queue())
        self._jobs[job_id] = job
        try:
            try:
                worker = await self._ready_worker(job)
            except EngineError as error:
                job.fail(f"The engine is not available: {error}", retryable=True)
                worker = None
            if worker is not None:
                job.worker = worker
                job.posted_at = time.time()
                worker.post(RunJob(request=request, sent_at=job.posted_at))
                if job.cancel_requested:
                    worker.post(CancelJob(job_id))
            while True:
                event = await job.events.get()
                if isinstance(event, Finished | Failed):
                    break
                yield event
        finally:
            if self._jobs.get(job_id) is job:
                del self._jobs[job_id]
            if not job.ended and job.worker is not None and job.worker is self._worker:
                job.ended = True
                job.worker.post(CancelJob(job_id))  # nobody listens any more: free the GPU
        # The job is forgotten before its final event goes out, so whoever gets a retryable
        # failure may submit the same job id again at once.
        yield event

    async def cancel(self, job_id: str) -> None:
        """Ask the job to stop; it ends with `Failed(reason='cancelled')` within one step."""
        job = self._jobs.get(job_id)
        if job is None or job.ended:
            return
        job.cancel_requested = True
        if job.worker is not None:
            job.worker.post(CancelJob(job_id))

    async def close(self) -> None:
        """Stop the worker cleanly (shutdown message, join, then terminate); fail what is left."""
        if self._closed:
            return
        self._closed = True
        for job in list(self._jobs.values()):
            job.fail(SHUT_DOWN, retryable=True)
        worker, self._worker = self._worker, None
        if worker is not None:
            if not worker.ready.done():
                worker.ready.set_exception(EngineError("The engine was closed while loading the model."))
                worker.ready.exception()  # retrieved: no "never retrieved" warning
            await asyncio.to_thread(worker.stop, STOP_TIMEOUT_S)
        if self._starting is not None and not self._starting.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._starting

    async def __aenter__(self) -> LocalEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- worker life -----------------------------------------------------------------------------

    async def _ready_worker(self, job: _Job) -> WorkerProcess | None:
        """A loaded worker to run `job` on, or None when the job already has its final event."""
        while True:
            await self.start()
            if job.cancel_requested:
                job.fail(CANCELLED, retryable=False)
                return None
            if self._closed:
                raise EngineError("The engine is closed.")
            worker = self._worker
            # The worker may have died between `start` returning and now; then start again.
            if worker is not None and _is_ready(worker):
                return worker

    async def _spawn(self) -> ModelInfo:
        loop = asyncio.get_running_loop()
        self._generation += 1
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        from engine import worker as worker_module  # light: the child imports torch, not this

        process = self._context.Process(
            target=worker_module.main,
            args=(child_conn, self._config, self._core, logging.getLogger("engine").getEffectiveLevel()),
            name=f"imagine-engine-{self._generation}",
            daemon=False,  # a daemon could not start helper processes (torch.compile workers)
        )
        try:
            await asyncio.to_thread(process.start)
        except Exception as error:  # out of processes or file handles, an unpicklable config...
            parent_conn.close()
            child_conn.close()
            raise EngineError(f"The engine process could not be started: {error}") from error
        child_conn.close()  # only the child holds its end now, so its death is EOF here
        worker = WorkerProcess(
            process=process, conn=parent_conn, ready=loop.create_future(), config=self._config
        )
        self._worker = worker
        live_workers.add(worker)
        log.info(
            "engine worker %d started (pid %s), loading %r", self._generation, process.pid, self._config.model
        )
        worker.begin(loop, self._on_message, self._on_lost)
        try:
            if self._closed:  # closed while the process was starting: close() could not see it
                raise EngineError("The engine was closed while loading the model.")
            info = await worker.ready
        except BaseException:
            if self._worker is worker:
                self._worker = None
            await asyncio.to_thread(worker.stop, STOP_TIMEOUT_S)
            raise
        self._info = info
        return info

    def _on_message(self, worker: WorkerProcess, message: object, received_at: float) -> None:
        """Runs on the event loop for `Ready`, `LoadFailed` and `JobEvent`."""
        if isinstance(message, JobEvent):
            job = self._jobs.get(message.event.job_id)
            if job is None or job.worker is not worker or job.ended:
                return  # a late event of an abandoned or already failed job
            event = message.event
            if isinstance(event, Finished):
                event = replace(event, timings=job.timings(event.timings, message.sent_at, received_at))
            job.put(event)
        elif isinstance(message, Ready):
            if not worker.ready.done():
                log.info(
                    "engine worker ready: %s on %s (pid %d, load %.1f s)",
                    message.info.name,
                    message.info.device,
                    message.pid,
                    message.load_s,
                )
                worker.ready.set_result(message.info)
        elif isinstance(message, LoadFailed) and not worker.ready.done():
            worker.ready.set_exception(
                EngineError(f"The engine could not load model {self._config.model!r}: {message.reason}")
            )

    def _on_lost(self, worker: WorkerProcess, hung: bool) -> None:
        """Runs on the event loop when the reader thread finds its worker dead or hung."""
        if worker is not self._worker:
            return  # already replaced or closed on purpose
        self._worker = None
        code = worker.process.exitcode
        if not worker.ready.done():
            what = "stopped responding" if hung else f"exited (code {code})"
            worker.ready.set_exception(
                EngineError(f"The engine process {what} while loading model {self._config.model!r}.")
            )
            return  # a worker that cannot even load is not restarted in a loop; start() says why
        log.error(
            "engine worker (pid %s) %s; failing its jobs and starting a fresh one",
            worker.process.pid,
            "hung (no heartbeat) and was killed" if hung else f"died (exit code {code})",
        )
        for job in list(self._jobs.values()):
            if job.worker is worker and not job.ended:
                job.fail((HUNG if hung else CRASHED) if job.started else LOST_BEFORE_START, retryable=True)
        if not self._closed:
            self.restarts += 1
            self._starting = asyncio.get_running_loop().create_task(self._spawn())
            self._starting.add_done_callback(_log_restart_failure)


def _is_ready(worker: WorkerProcess) -> bool:
    ready = worker.ready
    return ready.done() and not ready.cancelled() and ready.exception() is None


def _log_restart_failure(task: asyncio.Task[ModelInfo]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not restart the engine worker: %s", task.exception())


@dataclass(eq=False)
class _Job:
    """One submitted request, as the parent tracks it."""

    request: EngineRequest
    events: asyncio.Queue[EngineEvent]
    worker: WorkerProcess | None = None
    posted_at: float = 0.0
    started: bool = False
    ended: bool = False
    cancel_requested: bool = False

    def put(self, event: EngineEvent) -> None:
        if self.ended:
            return
        if isinstance(event, Finished | Failed):
            self.ended = True
        else:
            self.started = True
        self.events.put_nowait(event)

    def fail(self, reason: str, retryable: bool) -> None:
        self.put(Failed(job_id=self.request.job_id, reason=reason, retryable=retryable))

    def timings(self, core: dict[str, float], sent_at: float, received_at: float) -> dict[str, float]:
        return client_timings(core, self.posted_at, sent_at, received_at)


def client_timings(
    timings: dict[str, float], posted_at: float, sent_at: float, received_at: float
) -> dict[str, float]:
    """A `Finished` job's timings plus what the process boundary cost, all in seconds.

    The worker adds `request_transfer_s` (the request through the pipe), `worker_queue_s` (the
    wait behind earlier jobs in the worker, 0 with one slot) and `worker_run_s` (the core's run);
    here come `transfer_s` (the result back, unpickling included) and `engine_total_s` (sent to
    received). `engine_overhead_s` is what the engine process adds to the core's run: the total
    less the run and less the wait behind other jobs, which is queueing, not overhead.
    """
    total = received_at - posted_at
    result = {**timings, "transfer_s": max(received_at - sent_at, 0.0), "engine_total_s": total}
    if "worker_run_s" in timings:
        overhead = total - timings["worker_run_s"] - timings.get("worker_queue_s", 0.0)
        result["engine_overhead_s"] = max(overhead, 0.0)
    return result
