"""`python -m benchmarks.gpu_speed`: stock diffusers against our engine, one speed path at a time.

Made for one short run on a CUDA machine without network (`benchmarks/gpu.sh`): SD 1.5- and
SDXL-sized models are built with random weights from their published architectures
(`engine.builders.RANDOM_ARCHITECTURES`, the `random:sd15` / `random:sdxl` models of
`python -m benchmarks.bench_engine`), since a step's time does not depend on the weights' values.

For each model it runs these stages, each on a fresh engine (new model, new compile state), each
adding one path to the one above it (they run in `RUN_ORDER`, most important first):

    plain           bf16 (fp32 on a CPU), SDPA attention; stock diffusers is timed here too,
                    on the same resident model, interleaved with ours
    channels-last   + channels-last convolutions
    fused-qkv       + fused q/k/v projections
    compile         + regional torch.compile (cold: an empty compile cache)
    cuda-graphs     + CUDA graphs (the GPU defaults the README recommends)
    fp8             + float8 weights and matmuls (`torch._scaled_mm`)
    fp8-weights     + float8 weights only (dequantised for a bf16 matmul: memory, not speed)
    restart         the cuda-graphs stage again with the compile cache now warm: a restart's cold start

and prints, per stage: a 2x2 grid's seconds (median), the speed-up over stock diffusers, peak GPU
memory, cold start (build + speed paths + the engine's warm-up of every aspect bucket),
throughput at queue depth 1 and 4 (jobs per second; depth 4 runs as one batch, as the engine
batches a busy queue), and the image cost against the plain stage (mean pixel difference, SSIM).
Every stage appends to the JSON file as soon as it ends, so a run cut short keeps what it measured;
stages that would start after `--budget-s` are skipped and listed.

    python -m benchmarks.gpu_speed --rehearse        # the CPU rehearsal: tiny models, 4 steps
    python -m benchmarks.gpu_speed --archs sd15,sdxl --steps 30 --json out.json   # a GPU

Figures are printed, never asserted: record them in docs/benchmarks.md with date and hardware.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_batching import requests, run_batched
from benchmarks.bench_engine import (
    H200_TFLOPS,
    PROMPT,
    SEEDS,
    _generators,
    _peak_mb,
    _run_core,
    _timed,
    _unet_tflop_per_step,
    hardware_name,
)
from benchmarks.image_cost import mean_pixel_difference, mean_ssim
from engine.api import EngineConfig, ImageData, ImagineRequest, PromptSpec
from engine.core import EngineCore
from engine.quiet import quiet_libraries

# name -> the EngineConfig speed fields of that stage (each adds one path to the one before)
_GPU_DEFAULTS = {"channels_last": True, "fuse_qkv": True, "compile": "regional", "cuda_graphs": True}
STAGES: dict[str, dict[str, Any]] = {
    "plain": {"channels_last": False},
    "channels-last": {"channels_last": True},
    "fused-qkv": {"channels_last": True, "fuse_qkv": True},
    "compile": {"channels_last": True, "fuse_qkv": True, "compile": "regional"},
    "cuda-graphs": _GPU_DEFAULTS,
    "fp8-weights": {**_GPU_DEFAULTS, "fp8": "weights"},
    "fp8": {**_GPU_DEFAULTS, "fp8": "matmul"},
    "restart": _GPU_DEFAULTS,
}
# The order stages run in: the figures that matter most first (stock and the GPU defaults, then a
# restart while the compile cache is warm), so a run cut short by the budget loses the least.
RUN_ORDER = ("plain", "cuda-graphs", "restart", "compile", "fused-qkv", "channels-last", "fp8", "fp8-weights")
DEPTH4_STAGES = (
    "plain",
    "cuda-graphs",
)  # throughput at queue depth 4 costs four grids: measured where it matters
REHEARSAL_ARCHS = ("tiny", "tiny-xl")


@dataclass
class StageResult:
    arch: str
    stage: str
    speed: list[str]
    cold_start_s: float  # EngineCore.load(): build, speed paths, warm-up
    warmup_s: float | None
    grid_s: float | None = None  # median seconds for one 2x2 grid through the engine
    stock_grid_s: float | None = None  # the same grid from the stock diffusers pipeline (plain stage)
    speedup_vs_stock: float | None = None
    peak_mb: float | None = None
    depth1_jobs_s: float | None = None
    depth4_jobs_s: float | None = None
    unet_tflop_s: float | None = None
    mean_px_diff: float | None = None  # against the plain stage's grid (same seeds)
    ssim: float | None = None
    notes: list[str] = field(default_factory=list)


def _model_name(arch: str) -> str:
    return f"random:{arch}" if arch in ("sd15", "sdxl") else arch


def _free(device: torch.device) -> None:
    """Forget the last stage's model and compiled code (dynamo's caches hold its modules)."""
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run_stage(
    arch: str,
    stage: str,
    args: argparse.Namespace,
    reference: dict[str, list[ImageData]],
    stock_s: dict[str, float],
    flops: dict[str, float | None],
) -> StageResult:
    """Build a fresh engine with this stage's paths and measure it."""
    config = EngineConfig(
        model=_model_name(arch),
        device=args.device,
        max_pixels=4096 * 4096,
        compile_backend=args.compile_backend,
        compile_cache_dir=args.cache_dir,
        **STAGES[stage],
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    core = EngineCore(config)  # on a CPU rehearsal the engine refuses CUDA graphs with a log line
    began = time.perf_counter()
    info = core.load()
    device = core.model.device
    result = StageResult(arch, stage, list(info.speed), time.perf_counter() - began, info.warmup_s)
    if stage == "restart":
        return result
    width, height = args.size or (info.native_width, info.native_height)
    steps = args.steps or info.default_steps
    prompt = PromptSpec.single(PROMPT)
    grid_request = ImagineRequest("grid", prompt, SEEDS, width, height, steps=steps, style="raw")
    model = core.model
    images: list[tuple[ImageData, ...]] = []
    timed: list[float] = []
    stock_timed: list[float] = []

    def ours() -> None:
        images.append(_run_core(core, grid_request).images)

    def stock() -> None:
        model.pipe(
            prompt=PROMPT,
            height=height,
            width=width,
            num_inference_steps=steps,
            guidance_scale=info.default_guidance,
            num_images_per_prompt=4,
            generator=_generators(SEEDS),
            output_type="np",
        )

    with quiet_libraries():
        ours()  # a job at the grid's size and batch (warm-up covered the buckets; this covers --size)
        if stage == "plain":
            stock()
        for _ in range(args.repeats):  # interleaved, so drifting clocks hit both alike
            timed.append(_timed(ours, device))
            if stage == "plain":
                stock_timed.append(_timed(stock, device))
    result.grid_s = statistics.median(timed)
    result.depth1_jobs_s = 1 / result.grid_s
    if stage == "plain":
        stock_s[arch] = statistics.median(stock_timed)
        reference[arch] = list(images[-1])
        flops[arch] = _unet_tflop_per_step(core, width, height, 4)
    result.stock_grid_s = stock_s.get(arch)
    if result.stock_grid_s:
        result.speedup_vs_stock = result.stock_grid_s / result.grid_s
    if flops.get(arch):
        result.unet_tflop_s = flops[arch] * steps / result.grid_s
    if arch in reference:
        result.mean_px_diff = mean_pixel_difference(list(images[-1]), reference[arch])
        result.ssim = mean_ssim(list(images[-1]), reference[arch])
    if stage in DEPTH4_STAGES:
        batch = requests(4, width, height, steps, 0)
        with quiet_libraries():
            run_batched(core, batch)  # warm: a four-job batch is a new shape for the compiled UNet
            seconds = _timed(lambda: run_batched(core, requests(4, width, height, steps, 1)), device)
        result.depth4_jobs_s = 4 / seconds
    result.peak_mb = _peak_mb(device)
    return result  # the caller frees the model once this frame (and its closures) is gone


def _fmt(value: float | None, pattern: str) -> str:
    if value is None:  # a dash, as wide as the column
        return "-".rjust(int(pattern.lstrip(">").split(".")[0] or 0))
    return format(value, pattern)


def print_row(r: StageResult, hardware: str) -> None:
    share = ""
    if r.unet_tflop_s is not None and "H200" in hardware:
        share = f" ({r.unet_tflop_s / H200_TFLOPS:.0%} of H200)"
    print(
        f"{r.arch:<8}{r.stage:<14}{_fmt(r.grid_s, '>9.3f')}{_fmt(r.stock_grid_s, '>9.3f')}"
        f"{_fmt(r.speedup_vs_stock, '>8.2f')}{_fmt(r.peak_mb, '>9.0f')}{r.cold_start_s:>9.1f}"
        f"{_fmt(r.depth1_jobs_s, '>8.2f')}{_fmt(r.depth4_jobs_s, '>8.2f')}"
        f"{_fmt(r.mean_px_diff, '>8.2f')}{_fmt(r.ssim, '>8.4f')}{_fmt(r.unet_tflop_s, '>8.1f')}{share}",
        flush=True,
    )


HEADER = (
    f"{'model':<8}{'stage':<14}{'grid s':>9}{'stock s':>9}{'x stock':>8}{'peak MB':>9}{'cold s':>9}"
    f"{'jobs/s1':>8}{'jobs/s4':>8}{'px diff':>8}{'SSIM':>8}{'TFLOP/s':>8}"
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.gpu_speed", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--archs", default="sd15,sdxl", help="sd15, sdxl (random weights) or presets")
    parser.add_argument("--stages", default=",".join(RUN_ORDER), help=f"a subset of {', '.join(STAGES)}")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--size", default=None, help="WxH (default: each model's native size)")
    parser.add_argument("--repeats", type=int, default=2, help="timed grids per stage (median)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no stage after this")
    parser.add_argument("--json", default=None, help="write the results here (after every stage)")
    parser.add_argument("--cache-dir", default=None, help="compile cache (default: a fresh temp dir)")
    parser.add_argument("--compile-backend", default="inductor", help="torch.compile backend")
    parser.add_argument(
        "--rehearse", action="store_true", help="CPU rehearsal: tiny and tiny-xl, 4 steps, 1 repeat"
    )
    args = parser.parse_args(argv)
    if args.rehearse:
        args.archs = ",".join(REHEARSAL_ARCHS) if args.archs == "sd15,sdxl" else args.archs
        args.steps, args.repeats = min(args.steps, 4), 1
    args.size = tuple(int(v) for v in args.size.lower().split("x")) if args.size else None
    # A fresh cache: the compile stage measures a true cold start, `restart` the warm one.
    args.cache_dir = args.cache_dir or tempfile.mkdtemp(prefix="imagine-compile-cache-")
    archs = [a.strip() for a in args.archs.split(",") if a.strip()]
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}: choose from {', '.join(STAGES)}")
    logging.basicConfig(level=logging.WARNING)
    device = torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    hardware = hardware_name(device)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "hardware": hardware,
        "host": platform.node(),
        "torch": torch.__version__,
        "steps": args.steps,
        "repeats": args.repeats,
        "compile_backend": args.compile_backend,
        "results": [],
        "skipped": [],
    }
    import diffusers  # heavy: only for its version, once the run is done

    report["diffusers"] = diffusers.__version__
    print(f"# benchmarks.gpu_speed  {report['date']}")
    print(f"{device} {hardware}, torch {torch.__version__}, diffusers {diffusers.__version__}")
    print(f"models {', '.join(archs)}; {args.steps} steps, 2x2 grid, median of {args.repeats}")
    print(f"compile cache {args.cache_dir} ({args.compile_backend})")
    print(HEADER, flush=True)
    reference: dict[str, list[ImageData]] = {}
    stock_s: dict[str, float] = {}
    flops: dict[str, float | None] = {}
    # Stage by stage across the models, so a run cut short by the budget has the same stages for all.
    for stage in stages:
        for arch in archs:
            if time.perf_counter() - started > args.budget_s:
                report["skipped"].append(f"{arch}/{stage}")
                print(f"{arch:<8}{stage:<14}skipped: past the {args.budget_s:.0f}s budget", flush=True)
                continue
            result = run_stage(arch, stage, args, reference, stock_s, flops)
            _free(device)
            report["results"].append(dataclasses.asdict(result))
            print_row(result, hardware)
            if args.json:
                Path(args.json).write_text(json.dumps(report, indent=2))
    report["total_s"] = round(time.perf_counter() - started, 1)
    print(f"total {report['total_s']}s; speed paths per stage:")
    for r in report["results"]:
        print(f"  {r['arch']}/{r['stage']}: {', '.join(r['speed'])}; warm-up {_fmt(r['warmup_s'], '.1f')}s")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    sys.stdout.flush()
    return report


if __name__ == "__main__":
    main()
