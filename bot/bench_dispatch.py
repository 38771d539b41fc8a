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
    # job id -> how many more times it is lost before it starts (an engine process that died
    # while the job waited inside it): a retryable Failed with no Started before it
    lost_before_start: dict[str, int] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)  # job ids in the order the engine got them
    requests: list[EngineRequest] = field(default_factory=list)
    active: set[str] = field(default_factory=set)
    closed: bool = False
    info: ModelInfo = INFO  # what `start` reports

    def __post_init__(self) -> None:
        self._gates: dict[str, asyncio.Event] = {}
        self._cancelled: set[str] = set()

    @property
    def slots(self) -> int:
        return self.slots_

    async def start(self) -> ModelInfo:
        return self.info

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
            if self.lost_before_start.get(job_id, 0) > 0:
                self.lost_before_start[job_id] -= 1
                yield Failed(job_id, "The engine restarted before this job began", retryable=True)
                return
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


def output_size(request: EngineRequest) -> tuple[int, int]:
    """The size of each picture a stand-in answers `request` with: the size asked for, twice the
    source's for an upscale, the source's for the other edits."""
    if request.kind == "imagine":
        return request.width, request.height
    source = request.source
    if request.kind == "upscale":
        return source.width * 2, source.height * 2
    return source.width, source.height


def _finished(request: EngineRequest) -> Finished:
    width, height = output_size(request)
    if request.kind == "upscale":
        return Finished(request.job_id, (solid(width, height),), (request.seed,))
    images = tuple(solid(width, height, 40 * i) for i in range(len(request.seeds)))
    return Finished(
        request.job_id,
        images,
        tuple(request.seeds),
        grid=solid(width * 2, height * 2),
        timings={"total": 0.0},
    )


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


async def measure(engine, data_dir, jobs: int, label: str) -> dict[str, float]:
    """Run `jobs` grids one after another; overhead = wall time to `done` minus the engine's time."""
    import statistics
    import time

    from bot.core.jobs import Requester
    from bot.core.services import Services
    from bot.settings import Settings

    services = await Services.start(Settings(data_dir=data_dir), engine=engine)
    requester = Requester(0, "bench", source="console")
    overheads: list[float] = []
    completes: list[float] = []
    pipelined_ms = float("nan")
    sequential_completes: list[float] = []
    store = services.store
    complete_job = store.complete_job

    async def timed_complete(*args, **kwargs):
        t = time.perf_counter()
        try:
            return await complete_job(*args, **kwargs)
        finally:
            completes.append(time.perf_counter() - t)

    store.complete_job = timed_complete
    try:
        for i in range(jobs + 1):  # the first one warms up caches and is not counted
            t0 = time.perf_counter()
            [job] = await services.jobs.imagine(requester, f"a benchmark grid number {i} --seed {i}")
            async for _ in services.dispatcher.subscribe(job.id):
                pass
            wall = time.perf_counter() - t0
            row = await services.store.get_job(job.id)
            if row.status != "done":
                raise RuntimeError(f"benchmark job {job.id} ended {row.status}: {row.error}")
            if i:
                overheads.append(wall - float(row.timings["engine_s"]))
            else:
                completes.clear()
        sequential_completes = list(completes)
        # Pipelined: every job queued at once, as when several users wait. The engine's slot is
        # freed before the files are written, so part of the store's work hides behind the engine.
        t0 = time.perf_counter()
        queued = await services.jobs.imagine(requester, f"{{{','.join(str(i) for i in range(jobs))}}} grid")
        streams = [services.dispatcher.subscribe(job.id) for job in queued]
        for stream in streams:
            async for _ in stream:
                pass
        wall = time.perf_counter() - t0
        engine_total = 0.0
        for job in queued:
            row = await services.store.get_job(job.id)
            engine_total += float(row.timings["engine_s"])
        pipelined_ms = (wall - engine_total) / len(queued) * 1000
    finally:
        await services.stop()
    rest = [total - write for total, write in zip(overheads, sequential_completes, strict=True)]
    result = {
        "median_ms": statistics.median(overheads) * 1000,
        "p90_ms": sorted(overheads)[int(0.9 * (len(overheads) - 1))] * 1000,
        "complete_job_ms": statistics.median(sequential_completes) * 1000,
        "rest_ms": statistics.median(rest) * 1000,
        "pipelined_ms": pipelined_ms,
    }
    print(
        f"{label:<36} {jobs:>3} jobs  overhead/job: median {result['median_ms']:6.1f} ms, "
        f"p90 {result['p90_ms']:6.1f} ms (goal <= 50)  of which store.complete_job "
        f"{result['complete_job_ms']:5.1f} ms, everything else {result['rest_ms']:5.1f} ms; "
        f"{jobs} queued at once: {pipelined_ms:6.1f} ms/job beyond the engine",
        flush=True,
    )
    return result


async def _main(args) -> None:
    import dataclasses
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        for size in args.sizes:
            info = dataclasses.replace(INFO, native_width=size, native_height=size)
            engine = StandInEngine(steps=0, info=info)
            await measure(
                engine, Path(tmp) / f"standin-{size}", args.jobs, f"stand-in engine, {size}x{size} cells"
            )
        if not args.skip_tiny:
            from engine.api import EngineConfig
            from engine.local import LocalEngine

            engine = LocalEngine(EngineConfig(model="tiny", device=args.device))
            try:
                await measure(engine, Path(tmp) / "tiny", args.tiny_jobs, "tiny engine (spawned process)")
            finally:
                await engine.close()


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bot.bench_dispatch", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=30, help="jobs per stand-in run (default 30)")
    parser.add_argument("--tiny-jobs", type=int, default=5, help="jobs on the tiny engine (default 5)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[64, 512], help="stand-in cell sizes (default 64 512)"
    )
    parser.add_argument("--device", default="cpu", help="the tiny engine's device (default cpu)")
    parser.add_argument("--skip-tiny", action="store_true", help="only the stand-in engine")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
