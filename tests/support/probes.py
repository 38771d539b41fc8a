"""Wrappers that watch real functions run: how many calls at once, in which order."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any


class ConcurrencyProbe:
    """Calls `function`, holding each call `hold_s` longer, and records the most calls at once."""

    def __init__(self, function: Callable[..., Any], hold_s: float = 0.0) -> None:
        self.function = function
        self.hold_s = hold_s
        self.calls = 0
        self.peak = 0
        self._now = 0
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            self.calls += 1
            self._now += 1
            self.peak = max(self.peak, self._now)
        try:
            time.sleep(self.hold_s)
            try:
                return self.function(*args, **kwargs)
            except Exception as exc:  # the probe watches concurrency, not outcomes
                return exc
        finally:
            with self._lock:
                self._now -= 1


async def until_posted(engine: Any, *job_ids: str) -> None:
    """Until a `LocalEngine` has handed each job to its worker: its `RunJob` is in the pipe, so a
    message sent from now on (a cancel) reaches the worker after it (the pipe keeps order)."""
    while not all(
        (job := engine._jobs.get(job_id)) is not None and job.worker is not None for job_id in job_ids
    ):
        await asyncio.sleep(0.01)
