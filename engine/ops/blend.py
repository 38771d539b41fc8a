"""blend (/blend): four images that mix 2-5 pictures, by latent interpolation and img2img.

Each source is covered (scaled and centre-cropped) to the output size and encoded by the VAE.
The latents are averaged with equal weights, and the mean is given back the spread the sources
had: a plain mean of unrelated latents has a smaller variance than any of them, which the VAE
decodes as a washed-out grey. The mixed latents then start a strong img2img pass (the preset's
Vary (Strong) strength) with the optional prompt, one cell per seed, so the model redraws the
mixture into a coherent picture instead of a double exposure.
"""

from __future__ import annotations

import torch

from engine.api import BLEND_MAX_IMAGES, BLEND_MIN_IMAGES, BlendRequest
from engine.ops.checks import check_seeds, check_size, check_source, effective_steps
from engine.ops.generate import OpContext, OpResult, prepare, run_alone
from engine.ops.images import cover, pil_to_tensor
from engine.ops.sampler import encode_images


def mix_latents(latents: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) latents to one (1, C, h, w): the mean, rescaled per channel to the sources'
    average standard deviation and centred on their average mean."""
    mean = latents.mean(dim=0, keepdim=True)
    source_std = latents.std(dim=(2, 3), keepdim=True).mean(dim=0, keepdim=True)
    source_mean = latents.mean(dim=(2, 3), keepdim=True).mean(dim=0, keepdim=True)
    centred = mean - mean.mean(dim=(2, 3), keepdim=True)
    spread = centred.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return centred / spread * source_std + source_mean


def run_blend(ctx: OpContext, req: BlendRequest) -> OpResult:
    preset = ctx.model.preset
    count = len(req.sources)
    if not BLEND_MIN_IMAGES <= count <= BLEND_MAX_IMAGES:
        raise ValueError(f"/blend takes {BLEND_MIN_IMAGES} to {BLEND_MAX_IMAGES} images, got {count}")
    check_size(req.width, req.height, preset.size_step, ctx.max_pixels)
    check_seeds(req.seeds)
    for source in req.sources:
        check_source(source, 1, ctx.max_pixels)
    strength = preset.vary_strong
    steps = effective_steps(preset.default_steps if req.steps is None else req.steps, req.quality, strength)
    with torch.no_grad():
        pixels = torch.cat([pil_to_tensor(cover(s.to_pil(), req.width, req.height)) for s in req.sources])
        mixed = mix_latents(encode_images(ctx.model, pixels).float()).to(ctx.model.dtype)
    gen = prepare(
        ctx,
        prompt=req.prompt,
        seeds=list(req.seeds),
        width=req.width,
        height=req.height,
        steps=steps,
        guidance=preset.default_guidance,
        init=mixed,
        strength=strength,
    )
    return OpResult(images=run_alone(ctx.model, gen), seeds=list(req.seeds), timings=gen.timings)
