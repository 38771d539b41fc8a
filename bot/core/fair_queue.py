"""The fair queue: waiting jobs, one queue per user, served round-robin across users.

The next job to start is the oldest of the first user in the ring below their running limit; the
user served goes to the back of the ring, so one user's tenth job never delays another user's
first. A user at the limit is skipped but keeps their place.

There are two such rings, two lanes: Fast and Relax (`QueueEntry.relax`). A Relax job starts
only when no Fast job can (Midjourney's Relax mode), round-robin among the Relax users.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from bot.core.limits import Limits
from bot.logs import job_context
from storage.models import Job


@dataclass(eq=False)
class QueueEntry:
    """One job this dispatcher holds, waiting or running, with what it knows of its run."""

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
    relax: bool = False  # Relax mode: waits behind every Fast job
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    def of(cls, job: Job, limits: Limits) -> QueueEntry:
        relax = (job.params or {}).get("speed") == "relax"
        return cls(job.id, job.user_id, limits, kind=job.kind, guild_id=job.guild_id, relax=relax)

    def log_context(self) -> contextlib.AbstractContextManager[None]:
        return job_context(self.job_id, user_id=self.user_id, guild_id=self.guild_id, kind=self.kind)


class FairQueue:
    """The waiting jobs of every user, in the order the lanes and rings start them."""

    def __init__(self) -> None:
        self._lanes = (_Ring(), _Ring())  # Fast, then Relax

    def _lane(self, entry: QueueEntry) -> _Ring:
        return self._lanes[1 if entry.relax else 0]

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes)

    def waiting(self, user_id: int) -> int:
        """How many jobs of this user wait (in both lanes)."""
        return sum(lane.waiting(user_id) for lane in self._lanes)

    def add(self, entry: QueueEntry, front: bool = False) -> None:
        """At the back of its user's queue in its lane, or at the front (a retry keeps its turn)."""
        self._lane(entry).add(entry, front)

    def remove(self, entry: QueueEntry) -> bool:
        """Take a waiting job out of the queue; False when it was not waiting."""
        return self._lane(entry).remove(entry)

    def take_next(self, running_of: Callable[[int], int]) -> QueueEntry | None:
        """The Fast lane's next job, else the Relax lane's."""
        for lane in self._lanes:
            entry = lane.take_next(running_of)
            if entry is not None:
                return entry
        return None

    def order(self) -> Iterator[QueueEntry]:
        """The waiting jobs in the order they would start (running limits aside): Fast, then Relax."""
        for lane in self._lanes:
            yield from lane.order()


class _Ring:
    """One lane: the waiting jobs of every user, in the order the ring starts them."""

    def __init__(self) -> None:
        self._queues: dict[int, deque[QueueEntry]] = {}  # user -> waiting jobs, oldest first
        self._ring: deque[int] = deque()  # users with waiting jobs; the front is served next

    def __len__(self) -> int:
        return sum(len(q) for q in self._queues.values())

    def waiting(self, user_id: int) -> int:
        """How many jobs of this user wait."""
        return len(self._queues.get(user_id, ()))

    def add(self, entry: QueueEntry, front: bool = False) -> None:
        """At the back of its user's queue, or at the front (a retry keeps its turn)."""
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

    def remove(self, entry: QueueEntry) -> bool:
        """Take a waiting job out of the queue; False when it was not waiting."""
        queue = self._queues.get(entry.user_id)
        if queue is None or entry not in queue:
            return False
        queue.remove(entry)
        if not queue:
            del self._queues[entry.user_id]
            self._ring.remove(entry.user_id)
        return True

    def take_next(self, running_of: Callable[[int], int]) -> QueueEntry | None:
        """Round-robin: the first user in the ring below their running limit gives their oldest job."""
        for turn, user in enumerate(self._ring):
            queue = self._queues[user]
            if running_of(user) >= queue[0].limits.max_running_per_user:
                continue  # skipped, but keeps its place: it is first once a job of theirs ends
            entry = queue.popleft()
            del self._ring[turn]
            if queue:
                self._ring.append(user)
            else:
                del self._queues[user]
            return entry
        return None

    def order(self) -> Iterator[QueueEntry]:
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
