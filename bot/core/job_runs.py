"""Running one job: the engine's events become updates, and its ending is recorded in the store.

A mixin of `Dispatcher` (bot/core/dispatcher.py), split off by responsibility: the dispatcher
decides *when* a job runs, this decides what its run means (done, failed, cancelled, retried,
requeued because the engine lost it, or handed back at shutdown). It uses the dispatcher's state
and its queue methods, declared below.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import time
from collections.abc import Awaitable, Callable

from bot.core.fair_queue import QueueEntry
from bot.core.fast import charge
from bot.core.limits import Limits
from bot.core.png_info import job_texts
from bot.core.ports import JobStore
from bot.core.updates import FINAL_STATUSES, JobUpdate
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
from storage.ownership import Owner
from storage.records import JobFields

log = logging.getLogger("bot.core.dispatcher")  # one logger name for the dispatcher's lines

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


RequestBuilder = Callable[[Job], Awaitable[EngineRequest]]


class JobRuns:
    """How the dispatcher runs one job; see the module docstring."""

    # The dispatcher's state this mixin reads and writes (set in `Dispatcher.__init__`).
    _store: JobStore
    _engine: EngineClient
    _build_request: RequestBuilder
    _max_attempts: int
    _running: dict[str, QueueEntry]
    _stopping: bool
    limits: Limits
    owner: Owner

    def _publish(self, update: JobUpdate) -> None:
        raise NotImplementedError  # Dispatcher's

    def _pump(self) -> None:
        raise NotImplementedError  # Dispatcher's

    def _enqueue(self, entry: QueueEntry, front: bool = False) -> None:
        raise NotImplementedError  # Dispatcher's

    def _forget(self, entry: QueueEntry) -> None:
        raise NotImplementedError  # Dispatcher's

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

    # -----------------------------------------------------------------------------------------
    # Running one job
    # -----------------------------------------------------------------------------------------

    async def _run(self, entry: QueueEntry) -> None:
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

    async def _run_job(self, entry: QueueEntry) -> None:
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

    async def _requeue(self, entry: QueueEntry, job: Job, reason: str, *, counted: bool) -> None:
        """Back to the front of its user's queue; `counted`: this attempt used up the retry."""
        changes: JobFields = {"status": JobStatus.QUEUED.value, "error": reason}
        if not counted:
            changes["attempts"] = max(0, job.attempts - 1)
        await self._store.update_job(entry.job_id, **changes)
        retry = QueueEntry(
            entry.job_id,
            entry.user_id,
            entry.limits,
            kind=entry.kind,
            guild_id=entry.guild_id,
            retried=entry.retried or counted,
            requeued_unstarted=entry.requeued_unstarted + (0 if counted else 1),
            relax=entry.relax,
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
            await self._finish_failed(QueueEntry.of(job, self.limits), _disk_sentence(exc))
            return
        try:
            await charge(self._store, job, engine_s)  # Fast time is spent only on a stored result
        except Exception:  # the member keeps the result; a lost charge is logged, never fatal
            log.exception("could not spend the Fast time of this job")
        log.info(
            "done: %d image(s) in %.2fs (engine %.2fs, store %.3fs)",
            len(result.images),
            total_s + time.perf_counter() - t0,
            engine_s,
            time.perf_counter() - t0,
        )
        self._publish(JobUpdate(job.id, JobStatus.DONE.value))

    async def _store_result(self, job: Job, result: Finished, timings: dict[str, float]) -> None:
        await self._store.complete_job(
            job.id,
            images=list(result.images),
            seeds=list(result.seeds),
            grid=result.grid,
            timings=timings,
            owner_id=self.owner.id,
            texts=job_texts(
                job,
                result.seeds,
                [(image.width, image.height) for image in result.images],
                (result.grid.width, result.grid.height) if result.grid is not None else None,
            ),
        )

    async def _finish_failed(self, entry: QueueEntry, reason: str) -> None:
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

    async def _requeue_for_shutdown(self, entry: QueueEntry) -> None:
        if not entry.job_id:
            return
        log.info("shutting down: back to queued")
        job = await self._store.get_job(entry.job_id)
        attempts = max(0, (job.attempts if job else 1) - 1)
        await self._store.update_job(entry.job_id, status=JobStatus.QUEUED.value, attempts=attempts)
        self._publish(JobUpdate(entry.job_id, JobStatus.QUEUED.value))
