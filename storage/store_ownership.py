"""The ownership part of `Store`: which live process holds which pending job (storage/ownership.py).

A mixin of `Store` (storage/store.py), split off by subject; every method is one write.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from storage.models import Job, Process
from storage.ownership import Claim, Owner, OwnershipRepository
from storage.units import UnitsOfWork


class OwnershipMethods(UnitsOfWork):
    """Store methods for job ownership; see `Store` for the unit-of-work rules they follow."""

    async def claim_pending(self, owner: Owner, pick: Callable[[Job], bool] | None = None) -> Claim:
        """Recovery: take the pending jobs nobody live holds (those `pick` accepts), oldest first;
        `running` ones go back to `queued`. The rest are listed as left alone."""
        return await self._write(lambda session: OwnershipRepository(session).claim_pending(owner, pick))

    async def claim_job(self, job_id: str, owner: Owner) -> bool:
        """Hold one pending job; False when it ended or another live process holds it."""
        return await self._write(lambda session: OwnershipRepository(session).claim(job_id, owner))

    async def renew_leases(self, owner: Owner, job_ids: Sequence[str]) -> set[str]:
        """The heartbeat: extend this process's lease and those of `job_ids`; returns the ids it
        still holds (a job missing from the answer ended or was taken after its lease ran out)."""
        return await self._write(lambda session: OwnershipRepository(session).renew(owner, job_ids))

    async def release(self, owner: Owner) -> None:
        """On a clean stop: let go of the pending jobs and the process row, so the next start
        takes them at once instead of waiting for the leases to run out."""
        await self._write(lambda session: OwnershipRepository(session).release(owner))

    async def register_process(self, owner: Owner, role: str, *, exclusive: bool = False) -> list[Process]:
        """Record this process; returns the other live ones of its role. `exclusive` refuses
        (`AnotherProcessRunningError`) when there is one."""
        return await self._write(
            lambda session: OwnershipRepository(session).register(owner, role, exclusive=exclusive)
        )
