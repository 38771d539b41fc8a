"""`python -m benchmarks.bench_engine`: what each operation costs, and what the engine adds to diffusers.

For every operation it prints seconds per job, denoising steps per second, peak memory, and the
ratio of our time to a plain diffusers pipeline call doing the same work on the same resident
model (same size, steps, guidance, number of images). The goal is a ratio of at most 1.03.

    python -m benchmarks.bench_engine                          # the tiny preset on this machine
    python -m benchmarks.bench_engine --random-weights sdxl    # full-size SDXL, random weights (GPU)
    python -m benchmarks.bench_engine --model sd15 --steps 30  # a real model, if it is on disk
    python -m benchmarks.bench_engine --through local          # the same jobs through the spawned worker

`--through local` sends every job through `LocalEngine` (a spawned worker, the pipe, the
supervisor) as the bot does, and adds the median `engine_overhead_s` of `Finished.timings` (what
the process boundary adds to the core's run) and the worker's close time. The plain diffusers
baseline then runs on a second copy of the model in this process.

Figures are printed, never asserted: record them in docs/benchmarks.md with date and hardware.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from engine.api import (
    EngineConfig,
    Failed,
    Finished,
    ImagineRequest,
    OutpaintRequest,
    PromptSpec,
    UpscaleRequest,
    VaryRequest,
)
from engine.core import EngineCore
from engine.local import LocalEngine
from engine.ops.outpaint import plan_zoom, prefill
from engine.quiet import quiet_libraries

PROMPT = "a lighthouse on a cliff at dusk, oil painting"
SEEDS = (1, 2, 3, 4)
H200_TFLOPS = 790.0  # measured dense bf16 throughput the Performance goals are stated against


@dataclass
class Row:
    op: str
    ours_s: float
    plain_s: float
    steps: int
    peak_mb: float
    run_s: float | None = None  # through the worker: the core's own run (`worker_run_s`)
    overhead_s: float | None = None  # through the worker: `engine_overhead_s`

    @property
    def ratio(self) -> float:
        return self.ours_s / self.plain_s if self.plain_s else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    # ru_maxrss is KiB on Linux: the process's high-water mark, not per operation
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hardware_name(device: torch.device) -> str:
    """The GPU's name, or the processor's: the benchmark headers say what they ran on."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}"


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


Runner = Callable[[object], Finished]


def _run_core(core: EngineCore, request) -> Finished:
    events = []
    core.run(request, events.append, lambda: False)
    if not isinstance(events[-1], Finished):
        raise SystemExit(
            f"{request.kind} failed: {events[-1].reason if isinstance(events[-1], Failed) else events[-1]}"
        )
    return events[-1]


def _generators(seeds: tuple[int, ...]) -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def bench(
    core: EngineCore,
    width: int,
    height: int,
    steps: int,
    repeats: int,
    ops: list[str],
    run: Runner | None = None,
) -> list[Row]:
    """Time each op through `run` (the core in this process by default) against plain diffusers
    on `core`'s model."""
    model = core.model
    run = run or (lambda request: _run_core(core, request))
    device = model.device
    preset = model.preset
    guidance = preset.default_guidance
    prompt = PromptSpec.single(PROMPT)
    rows: list[Row] = []
    source = _run_core(
        core, ImagineRequest("src", prompt, (7,), width, height, steps=steps, guidance=guidance, style="raw")
    ).images[0]

    def plain_kwargs(n: int) -> dict:
        return {
            "prompt": PROMPT,
            "num_inference_steps": steps,
            "guidance_scale": guidance,
            "num_images_per_prompt": n,
            "generator": _generators(SEEDS[:n]),
            "output_type": "np",
        }

    cases: dict[str, tuple[Callable[[], object], Callable[[], object], int]] = {}
    cases["imagine"] = (
        lambda: run(
            ImagineRequest("b", prompt, SEEDS, width, height, steps=steps, guidance=guidance, style="raw"),
        ),
        lambda: model.pipe(height=height, width=width, **plain_kwargs(4)),
        steps,
    )
    strength = preset.vary_subtle
    cases["vary"] = (
        lambda: run(VaryRequest("b", source, prompt, SEEDS, strength=strength, steps=steps, style="raw")),
        lambda: model.img2img()(image=source.to_pil(), strength=strength, **plain_kwargs(4)),
        int(steps * strength),
    )
    up_strength = preset.upscale_subtle
    big = source.to_pil().resize((width * 2, height * 2))
    cases["upscale"] = (
        lambda: run(UpscaleRequest("b", source, prompt, seed=1, steps=steps)),
        lambda: model.img2img()(image=big, strength=up_strength, **plain_kwargs(1)),
        int(steps * up_strength),
    )
    canvas = plan_zoom(width, height, 2.0, None, preset.size_step)
    filled, mask = prefill(source.to_pil(), canvas)

    mask_image = Image.fromarray(mask * 255)
    cases["outpaint"] = (
        lambda: run(OutpaintRequest("b", source, prompt, SEEDS, zoom=2.0, steps=steps)),
        lambda: model.inpaint()(
            image=filled, mask_image=mask_image, height=height, width=width, strength=1.0, **plain_kwargs(4)
        ),
        steps,
    )
    for op in ops:
        ours_fn, plain_fn, op_steps = cases[op]
        ours_fn(), plain_fn()  # warm both paths
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        ours, plain, finished = [], [], []
        for _ in range(repeats):  # interleaved, so drifting clocks and neighbours hit both alike
            ours.append(_timed(lambda fn=ours_fn, out=finished: out.append(fn()), device))
            plain.append(_timed(plain_fn, device))
        timings = [f.timings for f in finished]
        row = Row(op, statistics.median(ours), statistics.median(plain), op_steps, _peak_mb(device))
        if all("engine_overhead_s" in t for t in timings):
            row.run_s = statistics.median(t["worker_run_s"] for t in timings)
            row.overhead_s = statistics.median(t["engine_overhead_s"] for t in timings)
        rows.append(row)
    return rows


class LocalRunner:
    """Runs requests through a `LocalEngine` from synchronous code (one private event loop)."""

    def __init__(self, config: EngineConfig) -> None:

        self.loop = asyncio.new_event_loop()
        self.engine = LocalEngine(config)
        self.count = 0

    def start(self) -> float:
        began = time.perf_counter()
        self.loop.run_until_complete(self.engine.start())
        return time.perf_counter() - began

    def __call__(self, request) -> Finished:
        self.count += 1  # a fresh job id per submission, as the bot's would be
        request = dataclasses.replace(request, job_id=f"{request.job_id}-{self.count}")
        last = self.loop.run_until_complete(self._last_event(request))
        if not isinstance(last, Finished):
            raise SystemExit(f"{request.kind} failed: {getattr(last, 'reason', last)}")
        return last

    async def _last_event(self, request):
        last = None
        async for event in self.engine.submit(request):
            last = event
        return last

    def close(self) -> float:
        """Close the engine (idle worker); returns the seconds it took."""
        began = time.perf_counter()
        self.loop.run_until_complete(self.engine.close())
        closed = time.perf_counter() - began
        self.loop.close()
        return closed


def _unet_tflop_per_step(core: EngineCore, width: int, height: int, batch: int) -> float | None:
    """Forward FLOPs of one guided UNet call (cond + uncond for `batch` cells), by PyTorch's counter."""
    try:
        from torch.utils.flop_counter import FlopCounterMode  # optional: newer torch only
    except ImportError:
        return None
    model = core.model
    scale = model.vae_scale
    latents = torch.randn(
        2 * batch, 4, height // scale, width // scale, device=model.device, dtype=model.dtype
    )
    dim = model.unet.config.cross_attention_dim
    hidden = torch.randn(2 * batch, 77, dim, device=model.device, dtype=model.dtype)
    added = None
    if model.unet.config.addition_embed_type == "text_time":
        pooled = (
            model.unet.config.projection_class_embeddings_input_dim
            - 6 * model.unet.config.addition_time_embed_dim
        )
        added = {
            "text_embeds": torch.randn(2 * batch, pooled, device=model.device, dtype=model.dtype),
            "time_ids": torch.tensor([[height, width, 0, 0, height, width]] * 2 * batch, device=model.device),
        }
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.unet(latents, 500, encoder_hidden_states=hidden, added_cond_kwargs=added)
    return counter.get_total_flops() / 1e12


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_engine", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--model", default="tiny", help="preset, folder, .safetensors or Hub id (default: tiny)"
    )
    parser.add_argument(
        "--random-weights", choices=("sd15", "sdxl"), help="full-size architecture, random weights"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--steps", type=int, default=None, help="steps per job (default: the preset's)")
    parser.add_argument("--size", default=None, help="WxH (default: the model's native size)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ops", default="imagine,vary,upscale,outpaint")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--through",
        choices=("core", "local"),
        default="core",
        help="run our jobs on the core in this process (default) or through LocalEngine's worker",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the spawned worker's torch reads it
    model = f"random:{args.random_weights}" if args.random_weights else args.model
    config = EngineConfig(model=model, device=args.device, warmup=True, max_pixels=4096 * 4096)
    local = None
    if args.through == "local":
        local = LocalRunner(config)
        worker_start_s = local.start()
    core = EngineCore(config)
    load_start = time.perf_counter()
    info = core.load()
    load_s = time.perf_counter() - load_start
    width, height = info.native_width, info.native_height
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
    steps = args.steps or info.default_steps
    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    device = core.model.device
    hardware = hardware_name(device)
    print(f"# benchmarks.bench_engine  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"model {model} ({info.family.value}), {device} {hardware}, {core.model.dtype}, torch threads "
        f"{torch.get_num_threads()}, load+warmup {load_s:.1f}s"
    )
    print(f"{width}x{height}, {steps} steps, guidance {info.default_guidance:g}, median of {args.repeats}")
    if local is not None:
        print(f"through LocalEngine: worker start (spawn, load, warm-up) {worker_start_s:.1f}s")
    try:
        with quiet_libraries():  # the stock pipelines' own dtype notes would bury the figures
            rows = bench(core, width, height, steps, args.repeats, ops, run=local)
    finally:
        close_s = local.close() if local is not None else None
    if local is None:
        print(f"{'op':<10}{'ours s/job':>12}{'steps/s':>10}{'diffusers s':>13}{'ratio':>8}{'peak MB':>10}")
        for r in rows:
            rate = r.steps / r.ours_s
            print(
                f"{r.op:<10}{r.ours_s:>12.3f}{rate:>10.2f}{r.plain_s:>13.3f}{r.ratio:>8.3f}{r.peak_mb:>10.0f}"
            )
    else:
        # end to end: submit to Finished in this process; run: the core inside the worker;
        # overhead: engine_overhead_s (what the process boundary adds to the run)
        print(
            f"{'op':<10}{'e2e s/job':>11}{'run s':>9}{'engine_overhead_s':>19}{'overhead %':>12}"
            f"{'diffusers s':>13}{'ratio':>8}"
        )
        for r in rows:
            share = r.overhead_s / r.run_s if r.run_s else float("nan")
            print(
                f"{r.op:<10}{r.ours_s:>11.3f}{r.run_s:>9.3f}{r.overhead_s:>19.4f}{share:>12.2%}"
                f"{r.plain_s:>13.3f}{r.ratio:>8.3f}"
            )
        print(f"LocalEngine.close() with an idle worker: {close_s:.3f}s")
    flops = _unet_tflop_per_step(core, width, height, 4)
    imagine = next((r for r in rows if r.op == "imagine"), None)
    if flops and imagine:
        achieved = flops * steps / imagine.ours_s
        line = f"UNet: {flops * 1e3:.3g} GFLOP per guided 4-image step, {achieved:.3g} TFLOP/s in imagine"
        if device.type == "cuda" and "H200" in hardware:
            line += f" ({achieved / H200_TFLOPS:.1%} of the H200's {H200_TFLOPS:.0f} TFLOP/s)"
        print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
