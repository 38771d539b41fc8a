"""Which waiting jobs share one denoising loop: the one rule, for every place the core runs.

The spawned worker (`engine.worker`) and each Ray Serve replica (`engine.ray_serve`) both hold a
line of jobs waiting for their core. `JobLine` is that line: jobs go in as they arrive, and
`next_batch` takes the next one together with the jobs of the same `batch_key` right behind it,
in order, up to the batch limit. The first job that cannot join (another size, another
operation) runs next, so nothing is ever overtaken. Keeping the rule here, and only here, means
a replica batches exactly as the local engine does.

No torch here: the parent-side modules import this one.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from engine.api import EngineRequest

log = logging.getLogger(__name__)

T = TypeVar("T")


class JobLine(Generic[T]):
    """Jobs waiting for one core, in arrival order; `request_of` says which request an item holds.

    Thread-safe: any thread may `put`, one thread (the one that runs the core) takes batches.
    """

    def __init__(self, request_of: Callable[[T], EngineRequest]) -> None:
        self._request_of = request_of
        self._queue: queue.SimpleQueue[T | None] = queue.SimpleQueue()
        self._held: list[T | None] = []  # taken from the queue but not batchable with what came before

    def put(self, item: T) -> None:
        self._queue.put(item)

    def close(self) -> None:
        """No more jobs: `next_batch` returns None once the jobs already in line are taken."""
        self._queue.put(None)

    def next_batch(self, core: Any, limit: int) -> list[T] | None:
        """Block for the next job; return it with the waiting jobs that may share its batch.

        None when the line was closed. `limit` is how many jobs one batch may hold (1: none share).
        """
        item = self._held.pop() if self._held else self._queue.get()
        if item is None:
            return None
        batch = [item]
        key = batch_key(core, self._request_of(item))
        while key is not None and len(batch) < limit:
            try:
                following = self._queue.get_nowait()
            except queue.Empty:
                break
            if following is None or batch_key(core, self._request_of(following)) != key:
                self._held.append(following)
                break
            batch.append(following)
        return batch


def batch_key(core: Any, request: EngineRequest) -> Any:
    """The core's batch key for a request; None (run alone) for a core that does not batch."""
    if not hasattr(core, "run_batch"):
        return None
    try:
        return core.batch_key(request)
    except Exception:  # a request too odd to classify still gets its run, alone
        log.exception("could not tell whether job %s can share a batch", request.job_id)
        return None


def slots_for(jobs_per_batch: int) -> int:
    """Jobs to keep in flight for one core: twice a batch, so the next batch gathers while one runs.

    Without batching, one: a second job waiting in the core would only wait there instead of in
    the fair queue, where a cancel or a fairer order can still reach it.
    """
    return 2 * jobs_per_batch if jobs_per_batch > 1 else 1
