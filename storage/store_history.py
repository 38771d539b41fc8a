"""The history half of `Store`: listing and searching jobs, lineage, and the messages showing a job.

A mixin of `Store` (storage/store.py), split off by subject like `ModerationMethods`; it uses the
store's units of work (`UnitsOfWork`: `_write`, `_read`, `_job`).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidInputError
from storage.models import Job
from storage.queries import HistoryPage, HistoryQuery, Lineage
from storage.repositories import JobRepository
from storage.units import UnitsOfWork
from storage.validation import is_int


class HistoryMethods(UnitsOfWork):
    """Store methods that read the history and record where a job is shown; see `Store` for the
    unit-of-work rules they follow."""

    async def pending_jobs(self) -> list[Job]:
        """Queued and running jobs, oldest first: what to resume after a restart."""
        return await self._read(lambda session: JobRepository(session).pending())

    async def user_jobs(
        self, user_id: int, statuses: Sequence[str] | None = None, limit: int = 50
    ) -> list[Job]:
        """A user's jobs, newest first, optionally only some statuses."""
        if statuses is not None:
            HistoryQuery(status=statuses).statuses()  # validates the names
        return await self._read(lambda session: JobRepository(session).for_user(user_id, statuses, limit))

    async def count_user_jobs(self, user_id: int, statuses: Sequence[str]) -> int:
        HistoryQuery(status=statuses).statuses()
        return await self._read(lambda session: JobRepository(session).count_for_user(user_id, statuses))

    async def history(self, query: HistoryQuery) -> HistoryPage:
        """Search the history, newest first, one page at a time (keyset: `query.before`).

        The repository checks the query before any SQL runs."""
        return await self._read(lambda session: JobRepository(session).history(query))

    async def lineage(self, job_id: str) -> Lineage:
        async def work(session: AsyncSession) -> Lineage:
            jobs = JobRepository(session)
            job = await self._job(session, job_id)
            return Lineage(
                ancestors=await jobs.ancestors(job_id), job=job, descendants=await jobs.descendants(job_id)
            )

        return await self._read(work)

    async def add_message(self, job_id: str, message_id: int, channel_id: int | None = None) -> Job:
        """Record a Discord message showing the job (buttons on it find the job again).

        `channel_id` is where the message is; None means the job's own channel. Recording the same
        message again moves it to this job and channel.
        """
        if not is_int(message_id):
            raise InvalidInputError(f"message id must be a whole number, got {message_id!r}")
        if channel_id is not None and not is_int(channel_id):
            raise InvalidInputError(f"channel id must be a whole number, got {channel_id!r}")

        async def work(session: AsyncSession) -> Job:
            job = await self._job(session, job_id)
            await JobRepository(session).add_message(job, message_id, channel_id)
            return job

        return await self._write(work)

    async def job_messages(self, job_id: str) -> list[tuple[int | None, int]]:
        """(channel id, message id) of every Discord message showing the job, oldest first, each
        once. The channel is None only when neither the message nor the job has one. One query, so
        an unknown job simply has no messages (hide/unhide call this after loading the job)."""
        return await self._read(lambda session: JobRepository(session).messages(job_id))

    async def find_job_by_message(self, message_id: int) -> Job | None:
        return await self._read(lambda session: JobRepository(session).by_message(message_id))
