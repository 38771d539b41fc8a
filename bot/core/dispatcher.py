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
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.core.ports import JobStore
from bot.core.updates import FINAL_STATUSES, JobUpdate, Listener, UpdateHub
from bot.logs import job_context
from engine.api import (
    CANCELLED,
    EngineClient,
    EngineError,
    EngineRequest,
    Failed,
    Finished,
    Progress,
    Started,
)
from storage.errors import JobStateError
from storage.models import Job, JobStatus
from storage.ownership import Owner, OwnershipConflictError
from storage.records import JobFields

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

# How often a job may go back to the queue, uncounted, because the engine lost it before it
# began; bounded, so an engine that loses everything still ends each job.
MAX_UNSTARTED_REQUEUES = 3


def _disk_sentence(exc: OSError) -> str:
    """Why the images could not be saved, in the operator's and the member's words."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the images could not be saved: the bot's disk is full"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return "the images could not be saved: the bot's data directory is read-only"
    return "the images could not be saved (a disk error on the bot's machine)"


class LimitError(Exception):
    """The user has too many jobs waiting; the message says how many and what the limit is."""


@dataclass(frozen=True)
class Limits:
    """Per-user limits, Midjourney's defaults: 3 running, 10 waiting."""

    max_running_per_user: int = 3
    max_queued_per_user: int = 10

    def with_overrides(self, running: int | None, queued: int | None) -> Limits:
        """These limits with a guild's own in place of each one it set (None or 0: not set)."""
        return Limits(running or self.max_running_per_user, queued or self.max_queued_per_user)


RequestBuilder = Callable[[Job], Awaitable[EngineRequest]]


@dataclass(eq=False)
class _Entry:
    job_id: str
    user_id: int
    limits: Limits
    kind: str | None = None  # for log lines (JSON logs carry user, guild and kind)
    guild_id: int | None = None
    retried: bool = False
    requeued_unstarted: int = 0  # times it came back before the engine began it (free retries)
    cancel_requested: bool = False
    shutdown: bool = False  # cancelled by `stop()`: goes back to queued, not cancelled
    storing: bool = False  # the engine is done with it; its files are being written (slot is free)
    lost: bool = False  # another process took it over (this one's lease ran out): drop its outcome
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, job: Job, limits: Limits) -> _Entry:
        return cls(job.id, job.user_id, limits, kind=job.kind, guild_id=job.guild_id)

    def log_context(self) -> contextlib.AbstractContextManager[None]:
        return job_context(self.job_id, user_id=self.user_id, guild_id=self.guild_id, kind=self.kind)


class Dispatcher:
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
        self._queues: dict[int, deque[_Entry]] = {}  # user -> waiting jobs, oldest first
        self._ring: deque[int] = deque()  # users with waiting jobs; the front is served next
        self._entries: dict[str, _Entry] = {}  # every job waiting or running
        self._running: dict[str, _Entry] = {}
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
            self._enqueue(_Entry.of(job, self.limits))
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

    async def _lose(self, entry: _Entry) -> None:
        """Another process took the job (this one's lease had run out): stop holding it."""
        with job_context(entry.job_id):
            log.warning("another process took this job; it is no longer run here")
            if entry.job_id in self._running:
                entry.lost = True
                with contextlib.suppress(Exception):
                    await self._engine.cancel(entry.job_id)
                return
            queue = self._queues.get(entry.user_id)
            if queue is not None and entry in queue:
                queue.remove(entry)
                if not queue:
                    del self._queues[entry.user_id]
                    self._ring.remove(entry.user_id)
            self._forget(entry)
            self._refresh_positions()
            await self._publish_store_status(entry.job_id, "another process took this job over")

    async def _publish_store_status(self, job_id: str, reason: str) -> None:
        """A final word for the followers of a job whose outcome another process writes, so no
        front end waits for an update that will never come from here."""
        try:
            job = await self._store.get_job(job_id)
        except Exception:
            job = None
        status = job.status if job is not None and job.status in FINAL_STATUSES else JobStatus.FAILED.value
        error = (job.error if job is not None and job.status in FINAL_STATUSES else None) or reason
        self._publish(JobUpdate(job_id, status, error=error))

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
        waiting = len(self._queues.get(user_id, ()))
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
        entry = _Entry.of(job, limits)
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
        return sum(len(q) for q in self._queues.values())

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
            queue = self._queues[entry.user_id]
            queue.remove(entry)
            if not queue:
                del self._queues[entry.user_id]
                self._ring.remove(entry.user_id)
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

    def _enqueue(self, entry: _Entry, front: bool = False) -> None:
        queue = self._queues.setdefault(entry.user_id, deque())
        if front:
            queue.appendleft(entry)
        else:
            queue.append(entry)
        if entry.user_id not in self._ring:
            if front:
                self._ring.appendleft(entry.user_id)
            else:
                self._ring.append(entry.user_id)
        self._entries[entry.job_id] = entry
        self._idle.clear()
        self._refresh_positions()

    def _running_of(self, user_id: int) -> int:
        return sum(1 for e in self._running.values() if e.user_id == user_id)

    def _take_next(self) -> _Entry | None:
        """Round-robin: the first user in the ring below their running limit gives their oldest job."""
        for turn, user in enumerate(self._ring):
            queue = self._queues[user]
            if self._running_of(user) >= queue[0].limits.max_running_per_user:
                continue  # skipped, but keeps its place: it is first once a job of theirs ends
            entry = queue.popleft()
            del self._ring[turn]
            if queue:
                self._ring.append(user)
            else:
                del self._queues[user]
            return entry
        return None

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

    def _order(self) -> Iterable[_Entry]:
        """The waiting jobs in the order the ring would start them (running limits aside)."""
        ring = list(self._ring)
        cursors = {user: 0 for user in ring}
        while ring:
            user = ring.pop(0)
            queue = self._queues[user]
            yield queue[cursors[user]]
            cursors[user] += 1
            if cursors[user] < len(queue):
                ring.append(user)

    def _refresh_positions(self) -> None:
        positions = {entry.job_id: i for i, entry in enumerate(self._order(), start=1)}
        for job_id, position in positions.items():
            if self._positions.get(job_id) != position:
                self._publish(JobUpdate(job_id, JobStatus.QUEUED.value, position=position))
        self._positions = positions

    def _forget(self, entry: _Entry) -> None:
        self._entries.pop(entry.job_id, None)
        self._running.pop(entry.job_id, None)
        self._positions.pop(entry.job_id, None)
        if not self._entries:
            self._idle.set()

    # -----------------------------------------------------------------------------------------
    # Running one job
    # -----------------------------------------------------------------------------------------

    async def _run(self, entry: _Entry) -> None:
        with entry.log_context():
            try:
                await self._run_job(entry)
            except asyncio.CancelledError:
                # Shutdown ran out of patience: the job goes back to queued for the next start.
                await asyncio.shield(self._requeue_for_shutdown(entry))
                raise
            except JobStateError as exc:
                # Not a bug: the job ended or changed hands elsewhere (another process, a moderator).
                log.warning("the job changed under this process: %s", exc)
                if entry.job_id:
                    await self._publish_store_status(entry.job_id, "this job was finished by another process")
            except Exception as exc:
                log.exception("job crashed in the dispatcher")
                await self._finish_failed(entry, f"internal error: {exc}")
            finally:
                self._forget(entry)
                self._pump()

    async def _run_job(self, entry: _Entry) -> None:
        job_id = entry.job_id
        t0 = time.perf_counter()
        job = await self._store.mark_running(job_id, owner_id=self.owner.id)
        self._publish(JobUpdate(job_id, JobStatus.RUNNING.value))
        log.info("running (attempt %d)", job.attempts)
        try:
            request = await self._build_request(job)
        except Exception as exc:
            log.warning("cannot build the engine request: %s", exc)
            await self._finish_failed(entry, str(exc))
            return
        t_engine = time.perf_counter()
        result: Finished | Failed | None = None
        began = False
        try:
            async for event in self._engine.submit(request):
                if isinstance(event, Progress):
                    self._publish(
                        JobUpdate(
                            job_id,
                            JobStatus.RUNNING.value,
                            step=event.step,
                            total=event.total,
                            preview=event.preview,
                        )
                    )
                elif isinstance(event, Started):
                    began = True
                    log.debug("engine started the job")
                elif isinstance(event, Finished | Failed):
                    result = event
                    break
        except EngineError as exc:
            result = Failed(job_id, f"engine unavailable: {exc}", retryable=True)
        engine_s = time.perf_counter() - t_engine
        if result is None:
            result = Failed(job_id, "the engine ended the job without a result", retryable=True)

        if entry.lost:
            await self._publish_store_status(job_id, "another process took this job over")
            return
        if isinstance(result, Finished):
            # The engine's slot is free now: the next job starts while this one's files are written.
            entry.storing = True
            self._pump()
            await self._finish_done(job, result, engine_s, time.perf_counter() - t0)
            return
        if entry.shutdown:
            await self._requeue_for_shutdown(entry)
            return
        if entry.cancel_requested or result.reason == CANCELLED:
            log.info("cancelled")
            await self._store.fail_job(
                job_id, "cancelled by the user", status=JobStatus.CANCELLED.value, owner_id=self.owner.id
            )
            self._publish(JobUpdate(job_id, JobStatus.CANCELLED.value, error="cancelled by the user"))
            return
        if result.retryable and not self._stopping:
            if not began and entry.requeued_unstarted < MAX_UNSTARTED_REQUEUES:
                # Lost before the engine began it (another job took the engine process down while
                # this one waited inside it): not a try of this job, so its one retry is kept.
                log.warning("the engine lost the job before it began, queued again: %s", result.reason)
                await self._requeue(entry, job, result.reason, counted=False)
                return
            if job.attempts < self._max_attempts and not entry.retried:
                log.warning("retryable failure, trying once more: %s", result.reason)
                await self._requeue(entry, job, result.reason, counted=True)
                return
        await self._finish_failed(entry, result.reason)

    async def _requeue(self, entry: _Entry, job: Job, reason: str, *, counted: bool) -> None:
        """Back to the front of its user's queue; `counted`: this attempt used up the retry."""
        changes: JobFields = {"status": JobStatus.QUEUED.value, "error": reason}
        if not counted:
            changes["attempts"] = max(0, job.attempts - 1)
        await self._store.update_job(entry.job_id, **changes)
        retry = _Entry(
            entry.job_id,
            entry.user_id,
            entry.limits,
            kind=entry.kind,
            guild_id=entry.guild_id,
            retried=entry.retried or counted,
            requeued_unstarted=entry.requeued_unstarted + (0 if counted else 1),
        )
        self._running.pop(entry.job_id, None)
        self._enqueue(retry, front=True)
        entry.job_id = ""  # this entry is spent; `_forget` must not drop the retry

    async def _finish_done(self, job: Job, result: Finished, engine_s: float, total_s: float) -> None:
        t0 = time.perf_counter()
        timings = dict(result.timings)
        timings["engine_s"] = round(engine_s, 4)
        try:
            await self._store_result(job, result, timings)
        except OSError as exc:
            # A full disk or a read-only data directory: the job fails with a sentence that says
            # so; `complete_job` wrote files atomically and removed them, so nothing half-written
            # is ever served.
            log.warning("could not save the images: %r", exc)
            await self._finish_failed(_Entry.of(job, self.limits), _disk_sentence(exc))
            return
        log.info(
            "done: %d image(s) in %.2fs (engine %.2fs, store %.3fs)",
            len(result.images),
            total_s + time.perf_counter() - t0,
            engine_s,
            time.perf_counter() - t0,
        )
        self._publish(JobUpdate(job.id, JobStatus.DONE.value))

    async def _store_result(self, job: Job, result: Finished, timings: dict[str, Any]) -> None:
        await self._store.complete_job(
            job.id,
            images=list(result.images),
            seeds=list(result.seeds),
            grid=result.grid,
            timings=timings,
            owner_id=self.owner.id,
        )

    async def _finish_failed(self, entry: _Entry, reason: str) -> None:
        if not entry.job_id:
            return
        log.warning("failed: %s", reason)
        try:
            await self._store.fail_job(entry.job_id, reason, owner_id=self.owner.id)
        except ValueError as exc:  # it ended some other way meanwhile (a cancel won the race)
            log.warning("could not record the failure: %s", exc)
            await self._publish_store_status(entry.job_id, reason)
            return
        self._publish(JobUpdate(entry.job_id, JobStatus.FAILED.value, error=reason))

    async def _requeue_for_shutdown(self, entry: _Entry) -> None:
        if not entry.job_id:
            return
        log.info("shutting down: back to queued")
        job = await self._store.get_job(entry.job_id)
        attempts = max(0, (job.attempts if job else 1) - 1)
        await self._store.update_job(entry.job_id, status=JobStatus.QUEUED.value, attempts=attempts)
        self._publish(JobUpdate(entry.job_id, JobStatus.QUEUED.value))
