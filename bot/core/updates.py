"""Progress fan-out: every job update goes to each listener (in order, on its own task) and to
the subscribers of that job.

A slow listener (a Discord edit, a metrics counter) never holds the dispatcher up: each has its
own queue and task. `subscribe` registers at once, so no update is lost between submitting a job
and iterating its updates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from bot.core.ports import JobStore
from engine.api import ImageData
from storage.models import JobStatus

log = logging.getLogger(__name__)

FINAL_STATUSES = frozenset(s.value for s in JobStatus if s.finished)


@dataclass(frozen=True)
class JobUpdate:
    """What a front end shows about one job: its status, queue position or progress, the error."""

    job_id: str
    status: str
    position: int | None = None  # 1 = next to start; only while queued
    step: int = 0
    total: int = 0
    preview: ImageData | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


Listener = Callable[[JobUpdate], Awaitable[None]]


class UpdateHub:
    """The listeners and subscribers of a dispatcher's job updates."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._listeners: list[tuple[asyncio.Queue[JobUpdate | None], asyncio.Task[None]]] = []
        self._subscribers: dict[str, list[asyncio.Queue[JobUpdate]]] = {}

    def add_listener(self, callback: Listener) -> None:
        """Call `callback` with every update of every job (recovered ones included), in order."""
        queue: asyncio.Queue[JobUpdate | None] = asyncio.Queue()
        task = asyncio.get_running_loop().create_task(self._feed(queue, callback))
        self._listeners.append((queue, task))

    def subscribe(self, job_id: str, *, tracked: bool) -> AsyncIterator[JobUpdate]:
        """The updates of one job from now on, ending with its final one.

        Registers at once (before the first `await`), so no update is lost between submitting and
        iterating; a job already finished yields one final update read from the store.
        """
        queue: asyncio.Queue[JobUpdate] = asyncio.Queue()
        self._subscribers.setdefault(job_id, []).append(queue)
        return self._follow(job_id, queue, tracked)

    async def _follow(
        self, job_id: str, queue: asyncio.Queue[JobUpdate], tracked: bool
    ) -> AsyncIterator[JobUpdate]:
        try:
            if not tracked and queue.empty():
                job = await self._store.get_job(job_id)
                if job is None:
                    raise KeyError(f"no job {job_id}")
                if job.status in FINAL_STATUSES:
                    yield JobUpdate(job_id, job.status, error=job.error)
                    return
            while True:
                update = await queue.get()
                yield update
                if update.final:
                    return
        finally:
            queues = self._subscribers.get(job_id, [])
            if queue in queues:
                queues.remove(queue)
            if not queues:
                self._subscribers.pop(job_id, None)

    async def listeners_idle(self) -> None:
        """Until every listener has handled every update published so far.

        Listeners run on their own tasks (a slow one never holds the queue up), so "the job is
        done" does not mean "every listener has seen it"; tests and shutdown wait here instead
        of sleeping.
        """
        await asyncio.gather(*(queue.join() for queue, _ in self._listeners))

    async def _feed(self, queue: asyncio.Queue[JobUpdate | None], callback: Listener) -> None:
        while (update := await queue.get()) is not None:
            try:
                await callback(update)
            except Exception:
                log.exception("a job listener failed on %s", update)
            finally:
                queue.task_done()
        queue.task_done()

    def publish(self, update: JobUpdate) -> None:
        for queue, _ in self._listeners:
            queue.put_nowait(update)
        for stream in self._subscribers.get(update.job_id, ()):
            stream.put_nowait(update)

    async def close(self) -> None:
        """Let every listener finish what it was given, then stop their tasks."""
        for queue, _task in self._listeners:
            queue.put_nowait(None)
        await asyncio.gather(*(task for _, task in self._listeners), return_exceptions=True)
        self._listeners.clear()
