"""`python -m benchmarks.bench_batching`: throughput against queue depth, batched and one at a time.

With D imagine jobs of one size waiting, the engine runs them as one batch (one UNet call per
step for all D x 4 cells). This prints, for each depth, jobs per second when the D jobs run one
after another and when they run as one batch, measured side by side (the two alternate within
each repeat, so a noisy machine slows both alike), and the ratio.

    python -m benchmarks.bench_batching                                  # tiny preset, this machine
    python -m benchmarks.bench_batching --random-weights sdxl --steps 30 --depths 1,2,4,8  # a GPU
    python -m benchmarks.bench_batching --through local    # steady state through the engine process

`--through local` keeps D jobs waiting at all times and hands them to two spawned engines, one
without batching and one with, as the dispatcher does (at most `slots` in flight): what a busy
server sees, including batches that are not full.

Figures are printed, never asserted: record them in docs/benchmarks.md with date and hardware.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import statistics
import sys
import time
from dataclasses import dataclass

import torch

from benchmarks.bench_engine import _sync, hardware_name
from engine.api import EngineConfig, EngineEvent, Finished, ImagineRequest, ModelInfo, PromptSpec
from engine.core import EngineCore
from engine.local import LocalEngine
from engine.quiet import quiet_libraries

PROMPTS = (
    "a lighthouse on a cliff at dusk",
    "a fox in the snow, watercolour",
    "a city street in the rain at night",
    "a bowl of lemons on a blue table",
)


@dataclass
class DepthRow:
    depth: int
    serial_s: float  # median seconds for the D jobs one at a time
    batched_s: float  # median seconds for the same D jobs as one batch

    @property
    def ratio(self) -> float:
        return self.serial_s / self.batched_s


def requests(depth: int, width: int, height: int, steps: int, round_: int) -> list[ImagineRequest]:
    """D different users' jobs: their own prompts and seeds, one size."""
    return [
        ImagineRequest(
            job_id=f"bench-{round_}-{i}",
            prompt=PromptSpec.single(PROMPTS[i % len(PROMPTS)]),
            seeds=tuple(range(4 * i, 4 * i + 4)),
            width=width,
            height=height,
            steps=steps,
        )
        for i in range(depth)
    ]


def _check(events: list[EngineEvent]) -> None:
    if not isinstance(events[-1], Finished):
        raise SystemExit(f"a benchmark job failed: {events[-1]}")


def run_serial(core: EngineCore, batch: list[ImagineRequest]) -> None:
    for request in batch:
        events: list[EngineEvent] = []
        core.run(request, events.append, lambda: False)
        _check(events)


def run_batched(core: EngineCore, batch: list[ImagineRequest]) -> None:
    events: dict[str, list[EngineEvent]] = {r.job_id: [] for r in batch}
    core.run_batch([(r, events[r.job_id].append, lambda: False) for r in batch])
    for job_events in events.values():
        _check(job_events)


def bench_depths(
    core: EngineCore, depths: list[int], width: int, height: int, steps: int, repeats: int
) -> list[DepthRow]:
    device = core.model.device
    rows = []
    for depth in depths:
        serial, batched = [], []
        for round_ in range(repeats):
            batch = requests(depth, width, height, steps, round_)
            for runner, times in ((run_serial, serial), (run_batched, batched)):
                _sync(device)
                start = time.perf_counter()
                runner(core, batch)
                _sync(device)
                times.append(time.perf_counter() - start)
        rows.append(DepthRow(depth, statistics.median(serial), statistics.median(batched)))
    return rows


async def steady(engine: LocalEngine, depth: int, jobs: int, width: int, height: int, steps: int) -> float:
    """Seconds for `jobs` jobs while `depth` wait at all times, handed over as the dispatcher does
    (at most `engine.slots` in flight)."""
    gate = asyncio.Semaphore(min(depth, engine.slots))
    batch = requests(jobs, width, height, steps, depth)

    async def one(request: ImagineRequest) -> None:
        async with gate:
            events = [event async for event in engine.submit(request)]
            _check(events)

    start = time.perf_counter()
    await asyncio.gather(*(one(r) for r in batch))
    return time.perf_counter() - start


async def bench_through_local(
    config: EngineConfig, depths: list[int], size: str | None, steps: int | None, batch_jobs: int
) -> list[DepthRow]:
    """Steady state through the spawned worker: one engine without batching, one with, side by side.

    The model loads only in the two workers; the sizes come from what they report.
    """
    rows = []
    async with (
        LocalEngine(dataclasses.replace(config, batch_jobs=1)) as serial,
        LocalEngine(dataclasses.replace(config, batch_jobs=batch_jobs)) as batched,
    ):
        info = await batched.start()
        width, height, steps = _work(info, size, steps)
        _header(config.model, info, f"{info.device}, spawned workers", width, height, steps)
        print(f"through LocalEngine: batch_jobs 1 vs {batch_jobs}, jobs kept D deep")
        for depth in depths:
            jobs = max(8, 3 * depth)
            serial_s = await steady(serial, depth, jobs, width, height, steps)
            batched_s = await steady(batched, depth, jobs, width, height, steps)
            rows.append(DepthRow(depth, serial_s * depth / jobs, batched_s * depth / jobs))
    return rows


def _work(info: ModelInfo, size: str | None, steps: int | None) -> tuple[int, int, int]:
    """Width, height and steps of every job: `--size`/`--steps`, else the model's own."""
    width, height = info.native_width, info.native_height
    if size:
        width, height = (int(v) for v in size.lower().split("x"))
    return width, height, steps or info.default_steps


def _header(model: str, info: ModelInfo, where: str, width: int, height: int, steps: int) -> None:
    print(f"# benchmarks.bench_batching  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"model {model} ({info.family.value}), {where}, torch threads {torch.get_num_threads()}")
    print(f"{width}x{height}, {steps} steps, 4 images per job")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_batching", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--model", default="tiny", help="preset, folder, .safetensors or Hub id")
    parser.add_argument(
        "--random-weights", choices=("sd15", "sdxl"), help="full-size architecture, random weights"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=None, help="steps per job (default: the preset's)")
    parser.add_argument("--size", default=None, help="WxH (default: the model's native size)")
    parser.add_argument("--depths", default="1,2,4", help="queue depths to measure, e.g. 1,2,4,8")
    parser.add_argument("--repeats", type=int, default=3, help="with --through core: median of this many")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--through",
        choices=("core", "local"),
        default="core",
        help="core: the same D jobs one at a time vs as one batch (the ideal); local: jobs kept "
        "D deep through LocalEngine's worker, as the dispatcher hands them over (steady state)",
    )
    parser.add_argument("--batch-jobs", type=int, default=4, help="with --through local: jobs per batch")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the spawned workers' torch reads it
    depths = sorted({int(d) for d in args.depths.split(",") if d.strip()})
    if not depths or depths[0] < 1:
        parser.error("--depths takes whole numbers of 1 or more, e.g. 1,2,4")
    model = f"random:{args.random_weights}" if args.random_weights else args.model
    config = EngineConfig(model=model, device=args.device, warmup=True, max_pixels=4096 * 4096)
    with quiet_libraries():
        if args.through == "local":
            rows = asyncio.run(bench_through_local(config, depths, args.size, args.steps, args.batch_jobs))
        else:
            core = EngineCore(config)
            info = core.load()
            width, height, steps = _work(info, args.size, args.steps)
            device = core.model.device
            where = f"{device} {hardware_name(device)}, {core.model.dtype}, median of {args.repeats}"
            _header(model, info, where, width, height, steps)
            rows = bench_depths(core, depths, width, height, steps, args.repeats)
    print(f"{'depth':>5}{'one at a time jobs/s':>22}{'batched jobs/s':>16}{'ratio':>8}")
    for r in rows:
        print(f"{r.depth:>5}{r.depth / r.serial_s:>22.3f}{r.depth / r.batched_s:>16.3f}{r.ratio:>8.2f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
