"""Timing a coroutine function in place: the benchmarks wrap the real method and collect seconds."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any


def timed(function: Callable[..., Awaitable[Any]], into: list[float]) -> Callable[..., Awaitable[Any]]:
    """`function`, appending each call's seconds to `into` (errors included: they took time too)."""

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - t0)

    return wrapper
