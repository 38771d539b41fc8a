"""`python -m benchmarks`: one way to find and run the benchmarks.

    python -m benchmarks                 # list them, with what each prints
    python -m benchmarks dispatch --jobs 10
    python -m benchmarks all             # the quick ones (CPU, minutes), one process each

Each runs in its own process (`python -m benchmarks.<module>`), so one benchmark's imports,
threads and peak memory do not colour the next one's figures.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Benchmark:
    name: str
    module: str
    prints: str
    quick: bool  # part of `all`: runs on a CPU in a few minutes with its defaults


BENCHMARKS = (
    Benchmark("prompt", "benchmarks.bench_prompt", "prompts parsed per second", True),
    Benchmark("storage", "benchmarks.bench_storage", "inserts/s, history latency over 100,000 jobs", True),
    Benchmark("gallery", "benchmarks.bench_gallery", "web gallery: time per page over 100,000 jobs", True),
    Benchmark("dispatch", "benchmarks.bench_dispatch", "dispatcher + store overhead per job", True),
    Benchmark("discord", "benchmarks.bench_discord", "Discord handler time per /imagine and result", True),
    Benchmark("engine", "benchmarks.bench_engine", "per operation: s/job, steps/s, vs diffusers", True),
    Benchmark("batching", "benchmarks.bench_batching", "jobs/s per queue depth, batched vs alone", True),
    Benchmark("decodes", "benchmarks.bench_decodes", "peak memory of 20 40 MP image prompts", False),
    Benchmark("ray", "benchmarks.ray_scaling", "jobs/s through Ray Serve with 1 and 2 replicas", False),
    Benchmark("toy", "engine.training.bench", "how well the toy model follows prompts", False),
    Benchmark("gpu", "benchmarks.gpu_speed", "stock diffusers vs each speed path (GPU; --rehearse)", False),
)


def _run(benchmark: Benchmark, args: list[str]) -> int:
    print(f"\n## {benchmark.name}: python -m {benchmark.module} {' '.join(args)}".rstrip(), flush=True)
    return subprocess.call([sys.executable, "-m", benchmark.module, *args])


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    by_name = {benchmark.name: benchmark for benchmark in BENCHMARKS}
    if not args or args[0] in ("-h", "--help", "list"):
        width = max(len(name) for name in by_name)
        for benchmark in BENCHMARKS:
            quick = "" if benchmark.quick else "  (not in `all`)"
            print(f"{benchmark.name:<{width}}  python -m {benchmark.module:<28} {benchmark.prints}{quick}")
        return 0
    if args[0] == "all":
        failed = [b.name for b in BENCHMARKS if b.quick and _run(b, args[1:]) != 0]
        if failed:
            print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1 if failed else 0
    if args[0] not in by_name:
        print(f"no benchmark {args[0]!r}; `python -m benchmarks` lists them", file=sys.stderr)
        return 2
    return _run(by_name[args[0]], args[1:])


if __name__ == "__main__":
    sys.exit(main())
