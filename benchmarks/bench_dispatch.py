"""`python -m benchmarks.bench_dispatch`: what the dispatcher and the store add to each job.

The figure is the wall time per job minus the engine's own time, with (1) a stand-in engine that
answers at once, which isolates our overhead, and (2) the real `tiny` engine in its spawned
process. The goal is at most 50 ms per job.

The stand-in engine is the tests' double, `tests/support/stand_in_engine.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.timing import timed
from bot.core.jobs import Requester
from bot.core.services import Services
from bot.settings import Settings
from engine.api import EngineConfig
from engine.local import LocalEngine
from tests.support.stand_in_engine import INFO, StandInEngine


async def measure(engine, data_dir, jobs: int, label: str) -> dict[str, float]:
    """Run `jobs` grids one after another; overhead = wall time to `done` minus the engine's time."""
    services = await Services.start(Settings(data_dir=data_dir), engine=engine)
    requester = Requester(0, "bench", source="console")
    overheads: list[float] = []
    completes: list[float] = []
    pipelined_ms = float("nan")
    sequential_completes: list[float] = []
    store = services.store
    store.complete_job = timed(store.complete_job, completes)
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

    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        for size in args.sizes:
            info = dataclasses.replace(INFO, native_width=size, native_height=size)
            engine = StandInEngine(steps=0, info=info)
            await measure(
                engine, Path(tmp) / f"standin-{size}", args.jobs, f"stand-in engine, {size}x{size} cells"
            )
        if not args.skip_tiny:
            engine = LocalEngine(EngineConfig(model="tiny", device=args.device))
            try:
                await measure(engine, Path(tmp) / "tiny", args.tiny_jobs, "tiny engine (spawned process)")
            finally:
                await engine.close()


def main(argv: list[str] | None = None) -> None:

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_dispatch", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--jobs", type=int, default=30, help="jobs per stand-in run (default 30)")
    parser.add_argument("--tiny-jobs", type=int, default=5, help="jobs on the tiny engine (default 5)")
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[64, 512], help="stand-in cell sizes (default 64 512)"
    )
    parser.add_argument("--device", default="cpu", help="the tiny engine's device (default cpu)")
    parser.add_argument("--skip-tiny", action="store_true", help="only the stand-in engine")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
