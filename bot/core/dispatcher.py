"""The dispatcher: a fair queue between the users and the engine's slots.

Jobs wait in one queue per user; the next job to start is taken round-robin across users (the
user served goes to the back of the ring), so one user's tenth job never delays another user's
first. Per-user limits cap waiting jobs (at submission: `LimitError`) and running jobs (at
scheduling: a user at the limit is skipped, not blocked). As many jobs run as the engine has slots.

The store is the system of record: a job is `running` in the store before the engine sees it,
and `done` only after `Store.complete_job` has its files in place. On start, whatever a previous
run left `queued` or `running` is queued again in its original order.

Front ends follow jobs through `JobUpdate`s: `add_listener` (every job; each listener is fed from
its own queue by its own task, so a slow Discord edit never stalls the engine) and
`subscribe(job_id)` (one job, ends with its final update).

The fair queue is bot/core/fair_queue.py, the limits bot/core/limits.py, and what one job's run
means (done, failed, retried, requeued) bot/core/job_runs.py, a mixin of `Dispatcher`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterable

from bot.core.fair_queue import FairQueue, QueueEntry
from bot.core.job_runs import JobRuns, RequestBuilder
from bot.core.limits import LimitError, Limits
from bot.core.ports import JobStore
from bot.core.updates import FINAL_STATUSES, JobUpdate, Listener, UpdateHub
from bot.logs import job_context
from engine.api import EngineClient
from storage.models import Job, JobStatus
from storage.ownership import Owner, OwnershipConflictError

log = logging.getLogger(__name__)

__all__ = [
    "FINAL_STATUSES",
    "Dispatcher",
    "JobUpdate",
    "LimitError",
    "Limits",
    "Listener",
    "RequestBuilder",
]


class Dispatcher(JobRuns):
    """Feeds the engine from the store, fairly; see the module docstring."""

    def __init__(
        self,
        store: JobStore,
        engine: EngineClient,
        request_builder: RequestBuilder,
        limits: Limits | None = None,
        *,
        max_attempts: int = 2,
        owner: Owner | None = None,
    ) -> None:
        self._store = store
        self._engine = engine
        self._build_request = request_builder
        self.limits = limits or Limits()
        self._max_attempts = max_attempts  # a retryable failure is tried once more by default
        self._queue = FairQueue()
        self._entries: dict[str, QueueEntry] = {}  # every job waiting or running
        self._running: dict[str, QueueEntry] = {}
        self._positions: dict[str, int] = {}
        self._updates = UpdateHub(store)
        self.recovered: list[str] = []  # the job ids the last `start()` took over
        # Pending jobs the last `start()` did not take because another live process holds them.
        self.left_alone: list[str] = []
        self.owner = owner or Owner()  # this process as the holder of the jobs it runs
        self._heartbeat: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        self._idle = asyncio.Event()
        self._idle.set()

    # -----------------------------------------------------------------------------------------
    # Lifecycle
    # -----------------------------------------------------------------------------------------

    async def start(self, recover: Callable[[Job], bool] | None = None) -> list[str]:
        """Queue again what a previous run left `queued` or `running` (oldest first), then run.

        `recover` picks which pending jobs this process may take (the console recovers console
        jobs, the Discord bot Discord jobs); the default takes them all. Only jobs no live
        process holds are taken (their owner's lease ran out, or nobody owns them); the others
        are listed in `left_alone`. Returns the recovered job ids.
        """
        claim = await self._store.claim_pending(self.owner, recover)
        recovered: list[str] = []
        for job in claim.taken:
            if job.id in self._entries:
                continue
            self._enqueue(QueueEntry.of(job, self.limits))
            recovered.append(job.id)
        if recovered:
            log.info("recovered %d pending job(s)", len(recovered))
        self.left_alone = [job.id for job in claim.left_alone]
        if self.left_alone:
            log.warning(
                "left %d pending job(s) alone: another running process holds them (%s)",
                len(self.left_alone),
                ", ".join(self.left_alone),
            )
        self.recovered = recovered
        self._started = True
        self._heartbeat = asyncio.get_running_loop().create_task(self._beat(), name="job-leases")
        self._pump()
        return recovered

    async def _beat(self) -> None:
        """Renew the leases of every job held here, a third of a lease apart, so they stay ours
        while this process lives; a job found taken meanwhile is dropped, not run twice."""
        while True:
            await asyncio.sleep(self.owner.lease_s / 3)
            held = list(self._entries)
            try:
                still = await self._store.renew_leases(self.owner, held)
            except Exception as exc:  # a busy or unreachable database: try again next beat
                log.warning("could not renew the job leases: %s", exc)
                continue
            for job_id in set(held) - still:
                entry = self._entries.get(job_id)
                if entry is not None:  # it may have ended here while the renewal was written
                    await self._lose(entry)

    async def _lose(self, entry: QueueEntry) -> None:
        """Another process took the job (this one's lease had run out): stop holding it."""
        with job_context(entry.job_id):
            log.warning("another process took this job; it is no longer run here")
            if entry.job_id in self._running:
                entry.lost = True
                with contextlib.suppress(Exception):
                    await self._engine.cancel(entry.job_id)
                return
            self._queue.remove(entry)
            self._forget(entry)
            self._refresh_positions()
            await self._publish_store_status(entry.job_id, "another process took this job over")

    async def stop(self, grace_s: float = 30.0) -> None:
        """Start nothing new; give running jobs `grace_s` to finish, then send them back to queued.

        Waiting jobs simply stay `queued` in the store, so the next start picks them all up.
        """
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        running = list(self._running.values())
        if running:
            log.info("stopping: waiting up to %.0fs for %d running job(s)", grace_s, len(running))
            tasks = [e.task for e in running if e.task is not None]
            _, pending = await asyncio.wait(tasks, timeout=grace_s) if tasks else (set(), set())
            if pending:
                for entry in list(self._running.values()):
                    entry.shutdown = True
                    with contextlib.suppress(Exception):
                        await self._engine.cancel(entry.job_id)
                _, pending = await asyncio.wait(pending, timeout=5.0)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self._store.release(self.owner)
        except Exception as exc:  # the leases run out on their own; recovery waits for that
            log.warning("could not release the job leases: %s", exc)
        await self._updates.close()

    # -----------------------------------------------------------------------------------------
    # Submission, positions, cancel
    # -----------------------------------------------------------------------------------------

    def check_capacity(self, user_id: int, count: int = 1, limits: Limits | None = None) -> None:
        """Raise `LimitError` unless `user_id` may queue `count` more jobs (checked before rows exist)."""
        limits = limits or self.limits
        waiting = self._queue.waiting(user_id)
        if waiting + count > limits.max_queued_per_user:
            if count > 1:
                raise LimitError(
                    f"that would queue {count} jobs and you already have {waiting} waiting; "
                    f"the limit is {limits.max_queued_per_user} waiting jobs per user"
                )
            raise LimitError(
                f"you already have {waiting} jobs waiting (the limit is {limits.max_queued_per_user}); "
                "try again when one has started"
            )

    async def submit(self, job: Job, limits: Limits | None = None) -> int:
        """Queue a `queued` job row; returns its position at submission (1 = next to start)."""
        if job.id in self._entries:
            return self._positions.get(job.id, 1)
        if job.status != JobStatus.QUEUED:
            raise ValueError(f"job {job.id} is {job.status}, only queued jobs can be submitted")
        limits = limits or self.limits
        self.check_capacity(job.user_id, 1, limits)
        if job.owner_id != self.owner.id and not await self._store.claim_job(job.id, self.owner):
            raise OwnershipConflictError(f"job {job.id} is held by another process; it is not run here")
        if job.id in self._entries:  # submitted again while the claim was written
            return self._positions.get(job.id, 1)
        entry = QueueEntry.of(job, limits)
        self._enqueue(entry)
        position = self._positions[job.id]
        with entry.log_context():
            log.info("queued at position %d for user %s", position, job.user_id)
        self._pump()
        await self._store.update_job(job.id, queue_position=position)
        return position

    def position(self, job_id: str) -> int | None:
        """The job's place in the queue (1 = next), or None when it is running or not here."""
        return self._positions.get(job_id)

    def queue_length(self) -> int:
        return len(self._queue)

    def running_count(self) -> int:
        return len(self._running)

    def is_tracked(self, job_id: str) -> bool:
        """True while the job waits or runs in this dispatcher."""
        return job_id in self._entries

    async def wait_idle(self) -> None:
        """Until nothing waits or runs (benchmarks and the console's `resume`)."""
        while self._entries:
            self._idle.clear()
            await self._idle.wait()

    async def cancel(self, job_id: str) -> bool:
        """Cancel a waiting job at once, or ask the engine to stop a running one. False: not here."""
        entry = self._entries.get(job_id)
        if entry is None:
            return False
        with entry.log_context():
            if job_id in self._running:
                log.info("cancel requested while running")
                entry.cancel_requested = True
                await self._engine.cancel(job_id)
                return True
            log.info("cancelled while queued")
            self._queue.remove(entry)
            self._forget(entry)
            await self._store.fail_job(
                job_id, "cancelled by the user", status=JobStatus.CANCELLED.value, owner_id=self.owner.id
            )
            self._publish(JobUpdate(job_id, JobStatus.CANCELLED.value, error="cancelled by the user"))
            self._refresh_positions()
            return True

    # -----------------------------------------------------------------------------------------
    # Progress fan-out (bot/core/updates.py)
    # -----------------------------------------------------------------------------------------

    def add_listener(self, callback: Listener) -> None:
        """Call `callback` with every update of every job (recovered ones included), in order."""
        self._updates.add_listener(callback)

    def subscribe(self, job_id: str) -> AsyncIterator[JobUpdate]:
        """The updates of one job from now on, ending with its final one (see `UpdateHub`)."""
        return self._updates.subscribe(job_id, tracked=job_id in self._entries)

    async def listeners_idle(self) -> None:
        """Until every listener has handled every update published so far."""
        await self._updates.listeners_idle()

    def _publish(self, update: JobUpdate) -> None:
        self._updates.publish(update)

    # -----------------------------------------------------------------------------------------
    # The fair queue
    # -----------------------------------------------------------------------------------------

    def _enqueue(self, entry: QueueEntry, front: bool = False) -> None:
        self._queue.add(entry, front)
        self._entries[entry.job_id] = entry
        self._idle.clear()
        self._refresh_positions()

    def _running_of(self, user_id: int) -> int:
        return sum(1 for e in self._running.values() if e.user_id == user_id)

    def _take_next(self) -> QueueEntry | None:
        return self._queue.take_next(self._running_of)

    def _pump(self) -> None:
        """Start jobs while the engine has free slots and someone eligible is waiting."""
        if not self._started or self._stopping:
            return
        started = False
        while sum(1 for e in self._running.values() if not e.storing) < max(1, self._engine.slots):
            entry = self._take_next()
            if entry is None:
                break
            self._running[entry.job_id] = entry
            entry.task = asyncio.get_running_loop().create_task(self._run(entry), name=f"job-{entry.job_id}")
            started = True
        if started:
            self._refresh_positions()

    def _order(self) -> Iterable[QueueEntry]:
        return self._queue.order()

    def _refresh_positions(self) -> None:
        positions = {entry.job_id: i for i, entry in enumerate(self._order(), start=1)}
        for job_id, position in positions.items():
            if self._positions.get(job_id) != position:
                self._publish(JobUpdate(job_id, JobStatus.QUEUED.value, position=position))
        self._positions = positions

    def _forget(self, entry: QueueEntry) -> None:
        self._entries.pop(entry.job_id, None)
        self._running.pop(entry.job_id, None)
        self._positions.pop(entry.job_id, None)
        if not self._entries:
            self._idle.set()
