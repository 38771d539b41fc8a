"""The shared body of every operation: conditioning, starting latents, the loop, the decode."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from engine.api import ImageData, ImagineRequest, OutpaintRequest, PromptSpec, VaryRequest
from engine.models import LoadedModel
from engine.ops.checks import check_range, effective_steps
from engine.ops.guidance import build_conditioning
from engine.ops.images import pil_to_tensor
from engine.ops.references import lane_image_embeds
from engine.ops.sampler import (
    Blend,
    Cancelled,
    Lane,
    decode_latents,
    denoise_lanes,
    encode_images,
    fresh_scheduler,
    make_noise,
    timesteps_for,
)
from engine.ops.tiling import circular_padding

ProgressFn = Callable[[int, int, torch.Tensor], None]


@dataclass
class OpContext:
    """What an operation needs from the core: the model, limits, and the step hooks."""

    model: LoadedModel
    max_pixels: int
    should_stop: Callable[[], bool]
    progress: ProgressFn
    upscale_tile: int


@dataclass
class OpResult:
    images: list[ImageData]
    seeds: list[int]
    timings: dict[str, float] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)  # /describe's prompts
    scores: list[float] = field(default_factory=list)  # /shorten's score per word


def _add(timings: dict[str, float], key: str, since: float) -> float:
    now = time.perf_counter()
    timings[key] = timings.get(key, 0.0) + now - since
    return now


@dataclass
class Generation:
    """One job's images in the making: its lane of the denoising loop and what the decode needs."""

    lane: Lane
    width: int
    height: int
    tile: bool
    timings: dict[str, float]
    # What the operation does to the decoded images (vary sizes them back to the source's size).
    finish: Callable[[list[ImageData]], list[ImageData]] | None = None

    @property
    def batch_key(self) -> tuple[int, int, bool]:
        """Generations with equal keys can share a loop: same latent size, same padding mode."""
        return (self.width, self.height, self.tile)


def generate(ctx: OpContext, **params: Any) -> list[ImageData]:
    """Make one image per seed: `prepare(ctx, **params)` run alone (see `prepare` for the keywords).

    Raises `Cancelled` when the job's `should_stop` turns true between two steps.
    """
    return run_alone(ctx.model, prepare(ctx, **params))


def run_alone(model: LoadedModel, gen: Generation) -> list[ImageData]:
    """One prepared generation in a loop of its own; raises `Cancelled` if it was stopped."""
    [images] = generate_together(model, [gen])
    if images is None:
        raise Cancelled
    return images


def prepare(
    ctx: OpContext,
    *,
    prompt: PromptSpec,
    seeds: list[int],
    width: int,
    height: int,
    steps: int,
    guidance: float,
    stylize: int = 100,
    style: str | None = None,
    chaos: int = 0,
    weird: int = 0,
    stop: int = 100,
    tile: bool = False,
    init: Image.Image | torch.Tensor | None = None,
    strength: float = 1.0,
    generate_mask: np.ndarray | None = None,
    image_embeds: torch.Tensor | None = None,
    timings: dict[str, float] | None = None,
    progress: ProgressFn | None = None,
) -> Generation:
    """Everything before the loop: conditioning, scheduler, starting latents; one image per seed.

    `init` starts from a picture (img2img, `strength` of the schedule re-run), or from latents
    already encoded (a tensor of shape (1, C, h, w): /blend's mixed latents); `generate_mask`
    (H x W, 1 where new content goes) keeps the rest of `init` (inpainting); `image_embeds`
    (num_images, dim) are IP-Adapter references (`references_applied` must hold the adapter).
    """
    model = ctx.model
    timings = {} if timings is None else timings
    t = time.perf_counter()
    cond = build_conditioning(
        model, prompt, seeds, guidance, stylize=stylize, style=style, chaos=chaos, weird=weird
    )
    scheduler = fresh_scheduler(model)
    timesteps = timesteps_for(scheduler, steps, strength if init is not None else 1.0, model.device)
    scale = model.vae_scale
    channels = model.vae.config.latent_channels
    noise = make_noise(seeds, (channels, height // scale, width // scale), weird).to(
        model.device, model.dtype
    )
    blend = None
    if init is None:
        latents = noise * scheduler.init_noise_sigma
    else:
        with circular_padding(model.unet, model.vae, enabled=tile):
            pixels = pil_to_tensor(init) if isinstance(init, Image.Image) else None
            encoded = encode_images(model, pixels) if pixels is not None else init
            init_latents = encoded.to(model.device, model.dtype).repeat(len(seeds), 1, 1, 1)
            latents = scheduler.add_noise(init_latents, noise, timesteps[:1].repeat(len(seeds)))
            if generate_mask is not None and pixels is not None:
                blend = _blend(model, init_latents, pixels, generate_mask, len(seeds))
    _add(timings, "encode", t)
    lane = Lane(
        cond=cond,
        latents=latents,
        scheduler=scheduler,
        timesteps=timesteps,
        seed=seeds[0],
        on_step=progress or ctx.progress,
        should_stop=ctx.should_stop,
        run_steps=max(1, math.ceil(len(timesteps) * stop / 100)),
        blend=blend,
        noise=noise,
    )
    if image_embeds is not None:
        lane.image_embeds = lane_image_embeds(image_embeds, cond.terms, len(seeds), cond.use_uncond)
    return Generation(lane=lane, width=width, height=height, tile=tile, timings=timings)


def prepare_request(
    ctx: OpContext,
    req: ImagineRequest | VaryRequest | OutpaintRequest,
    *,
    width: int,
    height: int,
    strength: float = 1.0,
    **params: Any,
) -> Generation:
    """`prepare` for a job's request: its prompt and seeds, and its guidance and steps (the
    preset's where it asks for none, checked, `--quality` applied); `params` as for `prepare`."""
    preset = ctx.model.preset
    guidance = preset.default_guidance if req.guidance is None else req.guidance
    check_range("guidance", guidance, 0, 30)
    steps = effective_steps(preset.default_steps if req.steps is None else req.steps, req.quality, strength)
    return prepare(
        ctx,
        prompt=req.prompt,
        seeds=list(req.seeds),
        width=width,
        height=height,
        steps=steps,
        guidance=guidance,
        strength=strength,
        **params,
    )


def generate_together(
    model: LoadedModel,
    gens: list[Generation],
    deliver: Callable[[int, list[ImageData] | None], None] | None = None,
) -> list[list[ImageData] | None]:
    """Run prepared generations of one `batch_key` in one loop; None for each that was cancelled.

    As each generation ends, its images are decoded and `deliver(index, images or None)` is
    called at once. Its `denoise` timing is the loop's time until it ended, and `batch_jobs`
    says how many generations shared the loop.
    """
    keys = {gen.batch_key for gen in gens}
    if len(keys) != 1:
        raise ValueError(f"generations of different sizes or tiling cannot share a loop: {sorted(keys)}")
    width, height, tile = keys.pop()
    results: list[list[ImageData] | None] = [None] * len(gens)
    index = {id(gen.lane): i for i, gen in enumerate(gens)}
    began = time.perf_counter()

    def ended(lane: Lane) -> None:
        i = index[id(lane)]
        gen = gens[i]
        _add(gen.timings, "denoise", began)
        if len(gens) > 1:
            gen.timings["batch_jobs"] = float(len(gens))
        if not lane.cancelled:
            t = time.perf_counter()
            images = decode_latents(model, lane.result)
            results[i] = gen.finish(images) if gen.finish is not None else images
            _add(gen.timings, "decode", t)
        if deliver is not None:
            deliver(i, results[i])

    with circular_padding(model.unet, model.vae, enabled=tile):
        denoise_lanes(model, [gen.lane for gen in gens], width=width, height=height, on_end=ended)
    return results


def _blend(
    model: LoadedModel, init_latents: torch.Tensor, pixels: torch.Tensor, mask: np.ndarray, n: int
) -> Blend:
    scale = model.vae_scale
    h, w = mask.shape
    m = torch.from_numpy(mask.astype(np.float32)).view(1, 1, h, w)
    # A latent cell is kept only when all its pixels are kept, and the kept area shrinks by one
    # more cell, so the seam itself is regenerated and the new area meets the old one smoothly.
    generate = torch.nn.functional.max_pool2d(m, scale)
    generate = torch.nn.functional.max_pool2d(generate, 3, stride=1, padding=1)
    latent_mask = generate.to(model.device, model.dtype).repeat(n, 1, 1, 1)
    masked = None
    if model.unet.config.in_channels == 9:
        kept_pixels = pixels * (m < 0.5)
        masked = encode_images(model, kept_pixels).repeat(n, 1, 1, 1)
    return Blend(init_latents=init_latents, mask=latent_mask, masked_image_latents=masked)
