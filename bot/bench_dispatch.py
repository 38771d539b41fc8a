"""`python -m bot.bench_dispatch`: what the dispatcher and the store add to each job.

The figure is the wall time per job minus the engine's own time, with (1) a stand-in engine that
answers at once, which isolates our overhead, and (2) the real `tiny` engine in its spawned
process. The goal is at most 50 ms per job.

`StandInEngine` is also the dispatcher tests' engine: a double of the engine boundary only
(requests in, typed events out), so order, limits, retries and cancels are checkable exactly and
in milliseconds, while the store, the files and the job service stay real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from engine.api import (
    EngineEvent,
    EngineRequest,
    Failed,
    Family,
    Finished,
    ImageData,
    ModelInfo,
    Progress,
    Started,
)

INFO = ModelInfo(
    name="stand-in",
    family=Family.SD,
    native_width=64,
    native_height=64,
    size_step=8,
    default_steps=2,
    default_guidance=7.0,
    device="cpu",
)


def solid(width: int, height: int, value: int = 128) -> ImageData:
    return ImageData(width, height, bytes([value]) * (width * height * 3))


@dataclass
class StandInEngine:
    """Runs each request in a few awaits; `hold` parks chosen jobs until released."""

    slots_: int = 1
    steps: int = 2
    hold: set[str] = field(default_factory=set)  # job ids that wait for `release`
    failures: dict[str, list[Failed]] = field(default_factory=dict)  # job id -> failures, one per attempt
    seen: list[str] = field(default_factory=list)  # job ids in the order the engine got them
    requests: list[EngineRequest] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    closed: bool = False

    def __post_init__(self) -> None:
        self._gates: dict[str, asyncio.Event] = {}
        self._cancelled: set[str] = set()

    @property
    def slots(self) -> int:
        return self.slots_

    async def start(self) -> ModelInfo:
        return INFO

    def release(self, job_id: str) -> None:
        self.hold.discard(job_id)
        if job_id in self._gates:
            self._gates[job_id].set()

    async def wait_active(self, job_id: str) -> None:
        while job_id not in self.active:
            await asyncio.sleep(0.001)

    async def submit(self, request: EngineRequest) -> AsyncIterator[EngineEvent]:
        job_id = request.job_id
        self.seen.append(job_id)
        self.requests.append(request)
        self.active.add(job_id)
        try:
            yield Started(job_id)
            if job_id in self.hold:
                gate = self._gates.setdefault(job_id, asyncio.Event())
                while not gate.is_set() and job_id not in self._cancelled:
                    await asyncio.sleep(0.002)
            for step in range(1, self.steps + 1):
                if job_id in self._cancelled:
                    self._cancelled.discard(job_id)
                    yield Failed(job_id, "cancelled")
                    return
                await asyncio.sleep(0)
                yield Progress(job_id, step, self.steps)
            planned = self.failures.get(job_id)
            if planned:
                yield planned.pop(0)
                return
            yield _finished(request)
        finally:
            self.active.discard(job_id)

    async def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)

    async def close(self) -> None:
        self.closed = True


def _finished(request: EngineRequest) -> Finished:
    kind = request.kind
    if kind == "upscale":
        source = request.source
        return Finished(request.job_id, (solid(source.width * 2, source.height * 2),), (request.seed,))
    if kind == "imagine":
        width, height = request.width, request.height
    else:
        width, height = request.source.width, request.source.height
    images = tuple(solid(width, height, 40 * i) for i in range(len(request.seeds)))
    return Finished(
        request.job_id,
        images,
        tuple(request.seeds),
        grid=solid(width * 2, height * 2),
        timings={"total": 0.0},
    )
