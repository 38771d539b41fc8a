"""The store's units of work, as the mixins of `Store` see them (`Store` implements them).

`_write(work)` runs `work` in one transaction and commits it; `_read(work)` in a read-only one;
`_job(session, job_id)` is the job or `NotFoundError`. See `Store` (storage/store.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Job

T = TypeVar("T")


async def stored_with(
    session: AsyncSession, row: T | None, default: Callable[[], T], values: Mapping[str, object]
) -> T:
    """`row`, or a new `default()` row when there is none, with `values` set and flushed: how a
    settings row that exists only once changed is updated (the guild's, a member's)."""
    if row is None:
        row = default()
        session.add(row)
    for name, value in values.items():
        setattr(row, name, value)
    await session.flush()
    return row


class UnitsOfWork:
    """The base of the store's mixins: the units of work they build on."""

    async def _write(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        raise NotImplementedError  # Store's

    async def _read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        raise NotImplementedError  # Store's

    @staticmethod
    async def _job(session: AsyncSession, job_id: str) -> Job:
        raise NotImplementedError  # Store's
