"""`python -m benchmarks.ray_scaling`: jobs per second through Ray Serve, 1 and 2 replicas, depth 1/4/8.

Each replica batches the jobs waiting in it with the local engine's own code (`engine.batching`),
so this measures what scale-out adds on top of batching: for each replica count, `--jobs` imagine
jobs of one size are kept D deep (at most `slots` in flight, as the dispatcher does) and the wall
time gives jobs/s and images/s. The model is an option (`--model tiny`, `--model toy` once that
preset exists, any IMAGINE_MODEL value); several `--model`s are measured side by side.

    python -m benchmarks.ray_scaling                         # tiny, a local Ray on this machine
    python -m benchmarks.ray_scaling --model tiny --model toy --device cuda --batch-jobs 4

On a CPU box the replicas share its cores, so 2 replicas show the cost of scale-out, not a gain;
on a GPU cluster each replica has its own GPU. Figures go to docs/benchmarks.md with the hardware.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from dataclasses import dataclass

from benchmarks.bench_batching import steady
from benchmarks.bench_engine import hardware_name
from engine.api import EngineConfig
from engine.quiet import quiet_libraries
from engine.ray_serve import RayEngine, Scaling

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    model: str
    replicas: int
    depth: int
    jobs: int
    seconds: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.seconds


async def bench_model(
    config: EngineConfig, replica_counts: list[int], depths: list[int], jobs: int, size: int, steps: int
) -> list[Row]:
    rows = []
    for replicas in replica_counts:
        engine = RayEngine(config, scaling=Scaling(replicas=replicas), app_name=f"bench-{replicas}")
        try:
            await engine.start()
            await steady(engine, 1, 1, size, size, steps)  # warm: every replica's first job is slower
            for depth in depths:
                seconds = await steady(engine, depth, jobs, size, size, steps)
                rows.append(Row(config.model, replicas, depth, jobs, seconds))
                log.info(
                    "%s: %d replica(s), depth %d: %.2f jobs/s", config.model, replicas, depth, jobs / seconds
                )
        finally:
            await engine.close()
    return rows


def print_table(rows: list[Row], device: str, size: int, steps: int, batch_jobs: int) -> None:
    import torch  # heavy: only to name the device in the table

    print(f"# benchmarks.ray_scaling  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"{hardware_name(torch.device(device))}, {os.cpu_count()} CPUs")
    print(f"{size}x{size}, {steps} steps, 4 images per job, batches of up to {batch_jobs} jobs per replica")
    print("| model | replicas | queue depth | jobs | jobs/s | images/s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(
            f"| {row.model} | {row.replicas} | {row.depth} | {row.jobs} | {row.jobs_per_s:.2f} "
            f"| {4 * row.jobs_per_s:.1f} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", help="preset, folder or Hub id; repeat to compare (default tiny)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--replicas", default="1,2", help="replica counts, e.g. 1,2")
    parser.add_argument("--depths", default="1,4,8", help="queue depths, e.g. 1,4,8")
    parser.add_argument("--jobs", type=int, default=16, help="jobs per measurement")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument(
        "--batch-jobs", type=int, default=4, help="jobs one replica batches (the GPU default)"
    )
    parser.add_argument("--cpus", type=int, default=None, help="logical CPUs of the local Ray (default: all)")
    parser.add_argument("--address", default=None, help="a Ray cluster to use instead of a local one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import ray  # optional: the ray extra

    options = {"include_dashboard": False, "log_to_driver": False}
    if args.address is None:
        options.update(num_cpus=args.cpus, _node_ip_address="127.0.0.1")
    ray.init(address=args.address, **options)
    replica_counts = [int(v) for v in args.replicas.split(",")]
    depths = [int(v) for v in args.depths.split(",")]
    rows: list[Row] = []
    with quiet_libraries():
        try:
            for model in args.model or ["tiny"]:
                config = EngineConfig(model=model, device=args.device, batch_jobs=args.batch_jobs)
                rows += asyncio.run(
                    bench_model(config, replica_counts, depths, args.jobs, args.size, args.steps)
                )
        finally:
            ray.shutdown()
    print_table(rows, args.device, args.size, args.steps, args.batch_jobs)


if __name__ == "__main__":
    main()
