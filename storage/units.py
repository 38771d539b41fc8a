"""The store's units of work, as the mixins of `Store` see them (`Store` implements them).

`_write(work)` runs `work` in one transaction and commits it; `_read(work)` in a read-only one;
`_job(session, job_id)` is the job or `NotFoundError`. See `Store` (storage/store.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Job

T = TypeVar("T")


class UnitsOfWork:
    """The base of the store's mixins: the units of work they build on."""

    async def _write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        raise NotImplementedError  # Store's

    async def _read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        raise NotImplementedError  # Store's

    @staticmethod
    async def _job(session: AsyncSession, job_id: str) -> Job:
        raise NotImplementedError  # Store's
