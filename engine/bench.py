"""`python -m engine.bench`: what each operation costs, and what the engine adds to diffusers.

For every operation it prints seconds per job, denoising steps per second, peak memory, and the
ratio of our time to a plain diffusers pipeline call doing the same work on the same resident
model (same size, steps, guidance, number of images). The goal is a ratio of at most 1.03.

    python -m engine.bench                          # the tiny preset on this machine
    python -m engine.bench --random-weights sdxl    # full-size SDXL, random weights (GPU)
    python -m engine.bench --model sd15 --steps 30  # a real model, if it is on disk

Figures are printed, never asserted: record them in docs/benchmarks.md with date and hardware.
"""

from __future__ import annotations

import argparse
import logging
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

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
from engine.ops.outpaint import plan_zoom, prefill

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


def _timed(fn: Callable[[], object], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


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


def bench(core: EngineCore, width: int, height: int, steps: int, repeats: int, ops: list[str]) -> list[Row]:
    model = core.model
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
        lambda: _run_core(
            core,
            ImagineRequest("b", prompt, SEEDS, width, height, steps=steps, guidance=guidance, style="raw"),
        ),
        lambda: model.pipe(height=height, width=width, **plain_kwargs(4)),
        steps,
    )
    strength = preset.vary_subtle
    cases["vary"] = (
        lambda: _run_core(
            core, VaryRequest("b", source, prompt, SEEDS, strength=strength, steps=steps, style="raw")
        ),
        lambda: model.img2img()(image=source.to_pil(), strength=strength, **plain_kwargs(4)),
        int(steps * strength),
    )
    up_strength = preset.upscale_subtle
    big = source.to_pil().resize((width * 2, height * 2))
    cases["upscale"] = (
        lambda: _run_core(core, UpscaleRequest("b", source, prompt, seed=1, steps=steps)),
        lambda: model.img2img()(image=big, strength=up_strength, **plain_kwargs(1)),
        int(steps * up_strength),
    )
    canvas = plan_zoom(width, height, 2.0, None, preset.size_step)
    filled, mask = prefill(source.to_pil(), canvas)
    from PIL import Image

    mask_image = Image.fromarray(mask * 255)
    cases["outpaint"] = (
        lambda: _run_core(core, OutpaintRequest("b", source, prompt, SEEDS, zoom=2.0, steps=steps)),
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
        ours, plain = [], []
        for _ in range(repeats):  # interleaved, so drifting clocks and neighbours hit both alike
            ours.append(_timed(ours_fn, device))
            plain.append(_timed(plain_fn, device))
        rows.append(Row(op, statistics.median(ours), statistics.median(plain), op_steps, _peak_mb(device)))
    return rows


def _unet_tflop_per_step(core: EngineCore, width: int, height: int, batch: int) -> float | None:
    """Forward FLOPs of one guided UNet call (cond + uncond for `batch` cells), by PyTorch's counter."""
    try:
        from torch.utils.flop_counter import FlopCounterMode
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
    parser = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.splitlines()[0])
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    model = f"random:{args.random_weights}" if args.random_weights else args.model
    core = EngineCore(EngineConfig(model=model, device=args.device, warmup=True, max_pixels=4096 * 4096))
    load_start = time.perf_counter()
    info = core.load()
    load_s = time.perf_counter() - load_start
    width, height = info.native_width, info.native_height
    if args.size:
        width, height = (int(v) for v in args.size.lower().split("x"))
    steps = args.steps or info.default_steps
    ops = [op.strip() for op in args.ops.split(",") if op.strip()]
    device = core.model.device
    hardware = (
        torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'CPU'}"
    )
    print(f"# engine.bench  {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(
        f"model {model} ({info.family.value}), {device} {hardware}, {core.model.dtype}, torch threads "
        f"{torch.get_num_threads()}, load+warmup {load_s:.1f}s"
    )
    print(f"{width}x{height}, {steps} steps, guidance {info.default_guidance:g}, median of {args.repeats}")
    rows = bench(core, width, height, steps, args.repeats, ops)
    print(f"{'op':<10}{'ours s/job':>12}{'steps/s':>10}{'diffusers s':>13}{'ratio':>8}{'peak MB':>10}")
    for r in rows:
        rate = r.steps / r.ours_s
        print(f"{r.op:<10}{r.ours_s:>12.3f}{rate:>10.2f}{r.plain_s:>13.3f}{r.ratio:>8.3f}{r.peak_mb:>10.0f}")
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
