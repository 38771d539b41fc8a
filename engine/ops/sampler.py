"""The one denoising loop every operation runs, over the resident model's own components.

It is diffusers' text-to-image / img2img / inpaint loop (same scheduler calls, same UNet call, same
VAE scaling), widened in three places the stock pipelines cannot reach: several conditioning
terms per cell (composable guidance), a stop check and a preview every step, and `--stop`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from engine.api import Family, ImageData
from engine.models import LoadedModel
from engine.ops.guidance import Conditioning, combine, weird_colour_cast
from engine.ops.images import tensor_to_images
from engine.quiet import quiet_libraries

StepCallback = Callable[[int, int, torch.Tensor], None]  # (step, total, x0 estimate)


class Cancelled(Exception):
    """`should_stop()` turned true between two steps."""


@dataclass
class Blend:
    """Inpainting state: where to generate (`mask` 1) and the clean latents of what is kept."""

    init_latents: torch.Tensor  # (N, C, h, w)
    mask: torch.Tensor  # (N, 1, h, w) in latent resolution, 1 = generate
    masked_image_latents: torch.Tensor | None = None  # for a dedicated 9-channel inpainting UNet


def fresh_scheduler(model: LoadedModel) -> SchedulerMixin:
    """A scheduler of its own per job: schedulers keep per-run state (step index, sigmas)."""
    scheduler = model.pipe.scheduler
    return type(scheduler).from_config(scheduler.config)


def timesteps_for(
    scheduler: SchedulerMixin, steps: int, strength: float, device: torch.device
) -> torch.Tensor:
    """The timesteps to run: all of them, or the last `strength` share for img2img (as diffusers does)."""
    scheduler.set_timesteps(steps, device=device)
    timesteps = scheduler.timesteps
    init = min(int(steps * strength), steps)
    if init < 1:
        raise ValueError(
            f"strength {strength:g} with {steps} steps leaves no denoising step; "
            "use more steps or a higher strength"
        )
    start = (steps - init) * scheduler.order
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start)
    return timesteps[start:]


def make_noise(
    seeds: list[int] | tuple[int, ...], shape: tuple[int, int, int], weird: int = 0
) -> torch.Tensor:
    """One (C, h, w) Gaussian per cell from its own seed, on the CPU so every device gets the same noise."""
    cells = []
    for seed in seeds:
        g = torch.Generator("cpu").manual_seed(int(seed))
        cell = torch.randn((1, *shape), generator=g, dtype=torch.float32)
        cells.append(cell + weird_colour_cast(seed, weird, shape[0]))
    return torch.cat(cells)


def _step_kwargs(scheduler: SchedulerMixin, seed: int) -> dict:
    # Ancestral / SDE schedulers draw noise each step: give them a seeded generator, never the global one.
    if "generator" in inspect.signature(scheduler.step).parameters:
        return {"generator": torch.Generator("cpu").manual_seed(int(seed))}
    return {}


def denoise(
    model: LoadedModel,
    cond: Conditioning,
    latents: torch.Tensor,
    scheduler: SchedulerMixin,
    timesteps: torch.Tensor,
    *,
    width: int,
    height: int,
    seed: int,
    on_step: StepCallback,
    should_stop: Callable[[], bool],
    run_steps: int | None = None,
    blend: Blend | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """Run the loop; return the final latents (the x0 estimate when `run_steps` stops it early)."""
    unet = model.unet
    n, terms = latents.shape[0], cond.terms
    total = len(timesteps) if run_steps is None else max(1, min(run_steps, len(timesteps)))
    hidden = cond.embeds.transpose(0, 1).reshape(terms * n, *cond.embeds.shape[2:]).to(model.dtype)
    added = None
    if model.family is Family.SDXL:
        pooled = cond.pooled.transpose(0, 1).reshape(terms * n, -1).to(model.dtype)
        time_ids = torch.tensor(
            [[height, width, 0, 0, height, width]], dtype=model.dtype, device=model.device
        )
        added = {"text_embeds": pooled, "time_ids": time_ids.repeat(terms * n, 1)}
    nine_channel = unet.config.in_channels == 9
    extra = None
    if nine_channel:
        if blend is None or blend.masked_image_latents is None:
            raise ValueError("this model is an inpainting model; it cannot make pictures from scratch")
        extra = (
            torch.cat([blend.mask, blend.masked_image_latents], dim=1).to(model.dtype).repeat(terms, 1, 1, 1)
        )
    step_kwargs = _step_kwargs(scheduler, seed)
    x0 = latents
    for i, t in enumerate(timesteps[:total]):
        if should_stop():
            raise Cancelled
        model_in = latents.repeat(terms, 1, 1, 1) if terms > 1 else latents
        model_in = scheduler.scale_model_input(model_in, t)
        if extra is not None:
            model_in = torch.cat([model_in, extra], dim=1)
        with torch.no_grad():
            out = unet(model_in, t, encoder_hidden_states=hidden, added_cond_kwargs=added, return_dict=False)[
                0
            ]
        eps = combine(out, cond)
        stepped = scheduler.step(eps, t, latents, return_dict=True, **step_kwargs)
        latents = stepped.prev_sample.to(model.dtype)
        x0 = getattr(stepped, "pred_original_sample", None)
        x0 = latents if x0 is None else x0.to(model.dtype)
        if blend is not None and not nine_channel:
            # Keep the known region on the noise level of the next step (diffusers' 4-channel inpainting).
            keep = blend.init_latents
            if i + 1 < len(timesteps):
                keep = scheduler.add_noise(keep, noise, timesteps[i + 1 : i + 2])
            latents = (1 - blend.mask) * keep + blend.mask * latents
            x0 = (1 - blend.mask) * blend.init_latents + blend.mask * x0
        on_step(i + 1, total, x0)
    return x0 if total < len(timesteps) else latents


@torch.no_grad()
def encode_images(model: LoadedModel, pixels: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) pixels in [-1, 1] to scaled latents (the posterior mean: deterministic)."""
    vae = model.vae
    latents = vae.encode(pixels.to(model.device, vae.dtype)).latent_dist.mean
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    return ((latents - shift) * vae.config.scaling_factor).to(model.dtype)


@torch.no_grad()
def decode_latents(model: LoadedModel, latents: torch.Tensor) -> list[ImageData]:
    """Scaled latents to pictures; one at a time when large so VAE memory stays bounded."""
    vae = model.vae
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    latents = latents / vae.config.scaling_factor + shift
    upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    if upcast:
        with quiet_libraries():  # diffusers warns on every cast of a model with fp32 modules
            vae.to(torch.float32)
    try:
        pixels_per_image = latents.shape[-1] * latents.shape[-2] * model.vae_scale**2
        chunk = latents.shape[0] if pixels_per_image <= 1024 * 1024 else 1
        images: list[ImageData] = []
        for part in latents.split(chunk):
            images.extend(tensor_to_images(vae.decode(part.to(vae.dtype), return_dict=False)[0]))
        return images
    finally:
        if upcast:
            with quiet_libraries():
                vae.to(model.dtype)
