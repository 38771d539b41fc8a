"""`InProcessEngine`: an `EngineClient` that runs `EngineCore` in a worker thread of this process.

For tests, SimCord scenarios and quick demos: no child process, but the same events, the same
cancel semantics and one job at a time, like the spawned `LocalEngine`. The model loads on the
worker thread so the event loop never blocks on torch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from engine.api import (
    EngineConfig,
    EngineError,
    EngineEvent,
    EngineRequest,
    Failed,
    Finished,
    ModelInfo,
)

log = logging.getLogger(__name__)


class InProcessEngine:
    """One slot; jobs run in submission order on a single worker thread."""

    def __init__(self, config: EngineConfig | None = None, **core_options: Any) -> None:
        self.config = config or EngineConfig()
        self._core_options = core_options
        self._core = None  # EngineCore, created on the worker thread's first use (imports torch)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine")
        self._info: ModelInfo | None = None
        self._cancelled: set[str] = set()
        self._closed = False

    @property
    def slots(self) -> int:
        return 1

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    def _load(self) -> ModelInfo:
        from engine.core import EngineCore  # heavy: torch, imported when the engine starts

        if self._core is None:
            self._core = EngineCore(self.config, **self._core_options)
        return self._core.load()

    async def start(self) -> ModelInfo:
        if self._closed:
            raise EngineError("the engine is closed")
        if self._info is None:
            # No asyncio lock: the single worker thread already serialises loads (the second
            # caller finds the model loaded), and the client may be used from several event loops.
            loop = asyncio.get_running_loop()
            self._info = await loop.run_in_executor(self._executor, self._load)
        return self._info

    async def submit(self, request: EngineRequest) -> AsyncIterator[EngineEvent]:
        """Run `request` and yield its events; leaving the loop early cancels the job."""
        await self.start()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[EngineEvent] = asyncio.Queue()
        job_id = request.job_id

        def emit(event: EngineEvent) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, event)

        def should_stop() -> bool:
            return job_id in self._cancelled or self._closed

        def work() -> None:
            try:
                self._core.run(request, emit, should_stop)
            except BaseException as exc:  # run reports its own failures; this is the last resort
                log.exception("job %s crashed the in-process engine", job_id)
                emit(Failed(job_id=job_id, reason=f"engine error: {exc}", retryable=True))

        future = loop.run_in_executor(self._executor, work)
        try:
            while True:
                event = await queue.get()
                yield event
                if isinstance(event, Finished | Failed):
                    break
        finally:
            if not future.done():
                self._cancelled.add(job_id)
                await asyncio.shield(future)
            self._cancelled.discard(job_id)

    async def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)

    async def close(self) -> None:
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._executor.shutdown, True)
