"""Who holds which job: owner ids, leases and the heartbeat that renews them.

The store is shared: a bot and `imagine resume`, two bots started by mistake, a bot restarted
while its old process lingers. Without a record of who holds a job, the second process's
recovery takes the first one's live jobs and both run them. So every pending job a process holds
(waiting in its dispatcher or running) carries that process's `owner_id` and a `lease_until`
deadline, renewed by a heartbeat. Recovery takes a pending job only when nobody holds it: no
owner, its own owner, a lease that ran out (the holder died without releasing it), or a holder on
this machine whose process is gone (killed: its pid and start time in the owner id say so, so a
bot restarted after a SIGKILL or a container restart need not wait out the lease).

Each claim is one conditional write, so two recoveries at once take each job once. A process
also keeps a row in `processes` with a lease of its own, which is how a second bot sees that one
is already running.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import JobStateError
from storage.models import Job, JobStatus, Process, utcnow
from storage.records import JobFields
from storage.repositories import PENDING

DEFAULT_LEASE_S = 30.0


_HOST_CHARS = 32  # of the host name kept in an owner id (the column holds 64 characters)


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None: no such process."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def start_ticks(pid: int) -> str:
    """When the process started, in clock ticks since boot ("0" where /proc is not there): with the
    pid, it names one process for the life of the machine, whatever reuses the pid later."""
    fields = _stat(pid)
    return fields[19] if fields and len(fields) > 19 else "0"  # field 22 of proc(5), starttime


def new_owner_id() -> str:
    """`host:pid:start:token`: which process holds a job, in a form that says when it is gone."""
    pid = os.getpid()
    return f"{socket.gethostname()[:_HOST_CHARS]}:{pid}:{start_ticks(pid)}:{secrets.token_hex(4)}"


def owner_gone(owner_id: str | None) -> bool:
    """True when the owner's process has certainly ended: it ran on this machine, and no process
    with its pid and start time is alive (killed, a zombie, or the pid taken by a later process,
    as after a container restart). An owner on another machine is never judged gone here: its
    lease decides. Owner ids of another form are never judged gone either."""
    parts = (owner_id or "").split(":")
    if len(parts) != 4 or not parts[1].isdigit() or parts[0] != socket.gethostname()[:_HOST_CHARS]:
        return False
    fields = _stat(int(parts[1]))
    if fields is None:
        if not os.path.isdir("/proc/self"):  # no /proc here: ask the kernel about the pid alone
            try:
                os.kill(int(parts[1]), 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                return False
            return False
        return True
    started = fields[19] if len(fields) > 19 else "0"
    return fields[0] == "Z" or (parts[2] != "0" and started != parts[2])


@dataclass(frozen=True)
class Owner:
    """This process as a job holder: its id and how long a lease lasts without a heartbeat."""

    id: str = field(default_factory=new_owner_id)
    lease_s: float = DEFAULT_LEASE_S

    def deadline(self, now: datetime | None = None) -> datetime:
        return (now or utcnow()) + timedelta(seconds=self.lease_s)

    def fields(self) -> JobFields:
        """The job columns that make a new row this process's from the start."""
        return {"owner_id": self.id, "lease_until": self.deadline()}


class OwnershipConflictError(JobStateError):
    """Another live process holds the job (or is the running bot); the message says which."""


class AnotherProcessRunningError(OwnershipConflictError):
    """A second process of a role that runs once per database (the Discord bot) was started."""


@dataclass(frozen=True)
class Claim:
    """What a recovery took, and what it left alone because another live process holds it."""

    taken: list[Job]
    left_alone: list[Job]


def _free(owner_id: str, now: datetime) -> ColumnElement[bool]:
    """SQL: the job is not held by a live process other than `owner_id`."""
    return or_(
        Job.owner_id.is_(None), Job.owner_id == owner_id, Job.lease_until.is_(None), Job.lease_until < now
    )


def held_by_other(job: Job, owner_id: str | None, now: datetime | None = None) -> bool:
    """The job belongs to another process whose lease has not run out."""
    if owner_id is None or job.owner_id is None or job.owner_id == owner_id:
        return False
    live_lease = job.lease_until is not None and job.lease_until >= (now or utcnow())
    # A holder SIGKILLed on this machine leaves a live lease behind; its pid says it is gone.
    return live_lease and not owner_gone(job.owner_id)


def check_owner(job: Job, owner_id: str | None, doing: str) -> None:
    """Refuse `doing` on a job another live process holds: both would write its outcome."""
    if held_by_other(job, owner_id):
        raise OwnershipConflictError(
            f"job {job.id} is held by another process ({job.owner_id}); this one cannot {doing} it"
        )


class OwnershipRepository:
    """The ownership queries over one session (see `Store` for the units of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim_pending(self, owner: Owner, pick: Callable[[Job], bool] | None) -> Claim:
        now = utcnow()
        stmt = select(Job).where(Job.status.in_(PENDING)).order_by(Job.created_at, Job.id)
        taken: list[Job] = []
        left: list[Job] = []
        for job in (await self.session.scalars(stmt)).all():
            if pick is not None and not pick(job):
                continue
            if held_by_other(job, owner.id, now):
                left.append(job)
                continue
            # Conditional on the job still being free: a recovery in another process that got
            # here first wins it, and this one sees no row change.
            changes: dict[str, object] = {"owner_id": owner.id, "lease_until": owner.deadline(now)}
            if job.status == JobStatus.RUNNING:
                # Interrupted, not failed: the attempt it was on does not count against its retry.
                changes.update(status=JobStatus.QUEUED.value, attempts=max(0, (job.attempts or 0) - 1))
            free = _free(owner.id, now)
            if job.owner_id is not None and owner_gone(job.owner_id):
                free = or_(free, Job.owner_id == job.owner_id)  # still the dead holder's
            result = await self.session.execute(
                update(Job).where(Job.id == job.id, Job.status.in_(PENDING), free).values(**changes)
            )
            if getattr(result, "rowcount", 0) == 1:  # a CursorResult: UPDATE reports its row count
                for name, value in changes.items():
                    setattr(job, name, value)
                taken.append(job)
            else:
                left.append(job)
        return Claim(taken, left)

    async def claim(self, job_id: str, owner: Owner) -> bool:
        now = utcnow()
        result = await self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(PENDING), _free(owner.id, now))
            .values(owner_id=owner.id, lease_until=owner.deadline(now))
        )
        return getattr(result, "rowcount", 0) == 1

    async def renew(self, owner: Owner, job_ids: Sequence[str]) -> set[str]:
        now = utcnow()
        await self.session.execute(
            update(Process).where(Process.owner_id == owner.id).values(lease_until=owner.deadline(now))
        )
        if not job_ids:
            return set()
        ids = list(job_ids)
        await self.session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.owner_id == owner.id, Job.status.in_(PENDING))
            .values(lease_until=owner.deadline(now))
        )
        held = select(Job.id).where(Job.id.in_(ids), Job.owner_id == owner.id, Job.status.in_(PENDING))
        return set((await self.session.scalars(held)).all())

    async def release(self, owner: Owner) -> None:
        await self.session.execute(
            update(Job)
            .where(Job.owner_id == owner.id, Job.status.in_(PENDING))
            .values(owner_id=None, lease_until=None)
        )
        await self.session.execute(delete(Process).where(Process.owner_id == owner.id))

    async def register(self, owner: Owner, role: str, *, exclusive: bool) -> list[Process]:
        now = utcnow()
        live = select(Process).where(
            Process.role == role, Process.lease_until >= now, Process.owner_id != owner.id
        )
        others = []
        for process in (await self.session.scalars(live)).all():
            if owner_gone(process.owner_id):  # killed on this machine before its lease ran out
                await self.session.delete(process)
            else:
                others.append(process)
        if others and exclusive:
            first = others[0]
            raise AnotherProcessRunningError(
                f"another {role} is already running on this database (pid {first.pid} on {first.host}, "
                f"started {first.started_at:%Y-%m-%d %H:%M} UTC); stop it first, or set "
                "IMAGINE_ALLOW_SECOND_BOT=1 if two bots on one database is what you want"
            )
        await self.session.execute(delete(Process).where(Process.lease_until < now))
        self.session.add(
            Process(
                owner_id=owner.id,
                role=role,
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                started_at=now,
                lease_until=owner.deadline(now),
            )
        )
        await self.session.flush()
        return others


__all__ = [
    "DEFAULT_LEASE_S",
    "AnotherProcessRunningError",
    "Claim",
    "Owner",
    "OwnershipConflictError",
    "OwnershipRepository",
    "check_owner",
    "held_by_other",
    "new_owner_id",
    "owner_gone",
]
