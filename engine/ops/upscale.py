"""upscale: a Lanczos resize to 2x, then a low-strength img2img refine with the same base model.

Past the preset's tile size the refine runs on overlapping tiles that are blended with linear
ramps, so memory stays bounded whatever the output size.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
from PIL import Image

from engine.api import ImageData, UpscaleRequest
from engine.ops.checks import check_range, check_seeds, check_source, effective_steps
from engine.ops.generate import OpContext, OpResult, generate
from engine.ops.images import from_array, round_to_step, to_array
from engine.ops.sampler import Cancelled

log = logging.getLogger(__name__)


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Tile origins along one axis: evenly stepped, the last one flush with the end."""
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return sorted(set(starts))


def _ramp(length: int, overlap: int, first: bool, last: bool) -> np.ndarray:
    w = np.ones(length, dtype=np.float32)
    if overlap > 0:
        ramp = (np.arange(overlap, dtype=np.float32) + 0.5) / overlap
        if not first:
            w[:overlap] = ramp
        if not last:
            w[-overlap:] = ramp[::-1]
    return w


def run_upscale(ctx: OpContext, req: UpscaleRequest) -> OpResult:
    preset = ctx.model.preset
    step = preset.size_step
    check_source(req.source, step, ctx.max_pixels)
    check_seeds([req.seed])
    check_range("upscale factor", req.factor, 1.0, 4.0)
    if req.mode not in ("subtle", "creative"):
        raise ValueError(f"upscale mode must be 'subtle' or 'creative', got {req.mode!r}")
    target_w, target_h = round(req.source.width * req.factor), round(req.source.height * req.factor)
    if target_w * target_h > ctx.max_pixels:
        side = math.isqrt(ctx.max_pixels)
        raise ValueError(
            f"upscaling {req.source.width}x{req.source.height} by {req.factor:g}x "
            f"makes {target_w}x{target_h}, "
            f"more than this engine's maximum of {ctx.max_pixels} pixels ({side}x{side})"
        )
    # Work on whole size steps (what the UNet needs); resize to the exact target at the end.
    work_w, work_h = round_to_step(target_w, step), round_to_step(target_h, step)
    resized = req.source.to_pil().resize((work_w, work_h), Image.Resampling.LANCZOS)
    strength = preset.upscale_subtle if req.mode == "subtle" else preset.upscale_creative
    steps = effective_steps(preset.default_steps if req.steps is None else req.steps, req.quality, strength)
    guidance = preset.default_guidance
    tile = max(step, (min(ctx.upscale_tile, max(work_w, work_h)) // step) * step)
    timings: dict[str, float] = {}
    common = {
        "prompt": req.prompt,
        "steps": steps,
        "guidance": guidance,
        "strength": strength,
        "timings": timings,
    }

    upscaler = ctx.model.upscaler
    if upscaler is not None and _fits_dedicated(req, upscaler, ctx.max_pixels):
        image = _run_dedicated(ctx, req, upscaler, steps, timings)
    elif work_w * work_h <= tile * tile:
        image = generate(ctx, seeds=[req.seed], width=work_w, height=work_h, init=resized, **common)[0]
    else:
        tw, th = min(tile, work_w), min(tile, work_h)
        overlap = max(step, (tile // 4) // step * step)
        xs, ys = tile_starts(work_w, tw, overlap), tile_starts(work_h, th, overlap)
        count = len(xs) * len(ys)
        acc = np.zeros((work_h, work_w, 3), dtype=np.float32)
        weight = np.zeros((work_h, work_w, 1), dtype=np.float32)
        k = 0
        for yi, y in enumerate(ys):
            for xi, x in enumerate(xs):
                done = k

                def progress(s: int, total: int, x0: torch.Tensor, done: int = done) -> None:
                    ctx.progress(done * total + s, count * total, x0)

                piece = generate(
                    ctx,
                    seeds=[(req.seed + k) & 0xFFFFFFFF],
                    width=tw,
                    height=th,
                    init=resized.crop((x, y, x + tw, y + th)),
                    progress=progress,
                    **common,
                )[0]
                wy = _ramp(th, min(overlap, th), yi == 0, yi == len(ys) - 1)
                wx = _ramp(tw, min(overlap, tw), xi == 0, xi == len(xs) - 1)
                w = (wy[:, None] * wx[None, :])[..., None]
                acc[y : y + th, x : x + tw] += to_array(piece).astype(np.float32) * w
                weight[y : y + th, x : x + tw] += w
                k += 1
        image = from_array(np.clip(np.round(acc / weight), 0, 255).astype(np.uint8))
        timings["tiles"] = float(count)
    if (image.width, image.height) != (target_w, target_h):
        image = from_array(np.asarray(image.to_pil().resize((target_w, target_h), Image.Resampling.LANCZOS)))
    return OpResult(images=[image], seeds=[req.seed], timings=timings)


# Noise added to the low-resolution image the x4 upscaler is conditioned on: more noise, more
# freedom to invent detail.
UPSCALER_NOISE = {"subtle": 20, "creative": 100}


def _fits_dedicated(req: UpscaleRequest, upscaler, max_pixels: int) -> bool:
    """The x4 upscaler works at its full factor; beyond `max_pixels` there the base model refines in tiles."""
    factor = upscaler.vae_scale_factor
    fits = req.source.width * req.source.height * factor * factor <= max_pixels
    if not fits:
        log.info("source too large for the dedicated upscaler at %dx; refining with the base model", factor)
    return fits


def _run_dedicated(ctx: OpContext, req: UpscaleRequest, upscaler, steps: int, timings: dict) -> ImageData:
    """The operator's x4 upscaler, then a Lanczos resize down to the requested factor."""
    start = time.perf_counter()

    def callback(step: int, _t, latents: torch.Tensor) -> None:
        if ctx.should_stop():
            raise Cancelled
        ctx.progress(step + 1, steps, latents)

    text = " ".join(t for t, w in req.prompt.segments if w > 0)
    out = upscaler(
        prompt=text,
        image=req.source.to_pil(),
        num_inference_steps=steps,
        noise_level=UPSCALER_NOISE[req.mode],
        generator=torch.Generator("cpu").manual_seed(req.seed),
        callback=callback,
        callback_steps=1,
        output_type="pil",
    )
    timings["upscaler"] = time.perf_counter() - start
    return from_array(np.asarray(out.images[0].convert("RGB")))
