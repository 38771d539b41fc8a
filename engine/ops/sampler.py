"""The one denoising loop every operation runs, over the resident model's own components.

It is diffusers' text-to-image / img2img / inpaint loop (same scheduler calls, same UNet call, same
VAE scaling), widened in four places the stock pipelines cannot reach: several conditioning
terms per cell (composable guidance), a stop check and a preview every step, `--stop`, and
several jobs of one size sharing each UNet call (`denoise_lanes`).
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
from engine.speed import before_unet_call

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


@dataclass
class Lane:
    """One job's share of a denoising loop that may carry several jobs of the same size.

    Every lane keeps its own conditioning, scheduler (schedulers hold per-run state), timesteps
    and step budget; the loop stacks the lanes' UNet inputs into one call per step and hands each
    lane back its slice. A lane whose `should_stop` turns true leaves the loop (`cancelled`) and
    the others go on.
    """

    cond: Conditioning
    latents: torch.Tensor
    scheduler: SchedulerMixin
    timesteps: torch.Tensor
    seed: int
    on_step: StepCallback
    should_stop: Callable[[], bool]
    run_steps: int | None = None
    blend: Blend | None = None
    noise: torch.Tensor | None = None
    # IP-Adapter image embeddings, one row per UNet row of this lane (engine/ops/references.py)
    image_embeds: torch.Tensor | None = None
    cancelled: bool = False
    result: torch.Tensor | None = None

    @property
    def total(self) -> int:
        steps = len(self.timesteps)
        return steps if self.run_steps is None else max(1, min(self.run_steps, steps))


class _Running:
    """A lane's per-loop tensors: the UNet inputs that do not change from step to step."""

    def __init__(self, model: LoadedModel, lane: Lane, width: int, height: int) -> None:
        cond, n = lane.cond, lane.latents.shape[0]
        self.lane = lane
        self.terms = cond.terms
        self.hidden = (
            cond.embeds.transpose(0, 1).reshape(self.terms * n, *cond.embeds.shape[2:]).to(model.dtype)
        )
        self.pooled = None
        self.time_ids = None
        if model.family is Family.SDXL:
            self.pooled = cond.pooled.transpose(0, 1).reshape(self.terms * n, -1).to(model.dtype)
            time_ids = torch.tensor(
                [[height, width, 0, 0, height, width]], dtype=model.dtype, device=model.device
            )
            self.time_ids = time_ids.repeat(self.terms * n, 1)
        self.nine_channel = model.unet.config.in_channels == 9
        self.extra = None
        blend = lane.blend
        if self.nine_channel:
            if blend is None or blend.masked_image_latents is None:
                raise ValueError("this model is an inpainting model; it cannot make pictures from scratch")
            self.extra = (
                torch.cat([blend.mask, blend.masked_image_latents], dim=1)
                .to(model.dtype)
                .repeat(self.terms, 1, 1, 1)
            )
        self.step_kwargs = _step_kwargs(lane.scheduler, lane.seed)
        self.x0 = lane.latents

    def model_input(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        lane = self.lane
        t = lane.timesteps[i]
        latents = lane.latents
        model_in = latents.repeat(self.terms, 1, 1, 1) if self.terms > 1 else latents
        model_in = lane.scheduler.scale_model_input(model_in, t)
        if self.extra is not None:
            model_in = torch.cat([model_in, self.extra], dim=1)
        return model_in, t

    def step(self, i: int, out: torch.Tensor, model: LoadedModel) -> None:
        lane = self.lane
        t = lane.timesteps[i]
        eps = combine(out, lane.cond)
        stepped = lane.scheduler.step(eps, t, lane.latents, return_dict=True, **self.step_kwargs)
        latents = stepped.prev_sample.to(model.dtype)
        x0 = getattr(stepped, "pred_original_sample", None)
        x0 = latents if x0 is None else x0.to(model.dtype)
        blend = lane.blend
        if blend is not None and not self.nine_channel:
            # Keep the known region on the noise level of the next step (diffusers' 4-channel inpainting).
            keep = blend.init_latents
            if i + 1 < len(lane.timesteps):
                keep = lane.scheduler.add_noise(keep, lane.noise, lane.timesteps[i + 1 : i + 2])
            latents = (1 - blend.mask) * keep + blend.mask * latents
            x0 = (1 - blend.mask) * blend.init_latents + blend.mask * x0
        lane.latents = latents
        self.x0 = x0
        lane.on_step(i + 1, lane.total, x0)
        if i + 1 == lane.total:
            lane.result = x0 if lane.total < len(lane.timesteps) else latents


def denoise_lanes(
    model: LoadedModel,
    lanes: list[Lane],
    *,
    width: int,
    height: int,
    on_end: Callable[[Lane], None] | None = None,
) -> None:
    """Run every lane to its end (`lane.result`) or its cancel (`lane.cancelled`), sharing UNet calls.

    All lanes are `width` x `height`. Step i of every lane that still runs goes into one UNet
    call: the cells of several jobs fill the GPU better than one job's four (see the README's
    "Batching"). One lane alone runs exactly the single-job loop. `on_end(lane)` is called as
    soon as a lane ends, so its job need not wait for the slowest one.
    """
    unet = model.unet
    running = [_Running(model, lane, width, height) for lane in lanes]
    i = 0
    while running:
        for r in list(running):
            if r.lane.should_stop():
                r.lane.cancelled = True
                running.remove(r)
                if on_end is not None:
                    on_end(r.lane)
        if not running:
            return
        inputs = [r.model_input(i) for r in running]
        model_in = torch.cat([x for x, _ in inputs]) if len(inputs) > 1 else inputs[0][0]
        hidden = torch.cat([r.hidden for r in running]) if len(running) > 1 else running[0].hidden
        if len(running) == 1:
            t = inputs[0][1]
        else:
            # Lanes may be at different timesteps (another step count): one timestep per row.
            t = torch.cat([t.reshape(1).expand(x.shape[0]) for x, t in inputs])
        added = None
        if model.family is Family.SDXL:
            added = {
                "text_embeds": torch.cat([r.pooled for r in running]),
                "time_ids": torch.cat([r.time_ids for r in running]),
            }
        references = [r.lane.image_embeds for r in running if r.lane.image_embeds is not None]
        if references:  # a job with --sref/--oref runs alone (EngineCore.batch_key)
            added = {**(added or {}), "image_embeds": [torch.cat(references)]}
        before_unet_call(model)
        with torch.no_grad():
            out = unet(model_in, t, encoder_hidden_states=hidden, added_cond_kwargs=added, return_dict=False)[
                0
            ]
        for r, part in zip(running, out.split([x.shape[0] for x, _ in inputs]), strict=True):
            r.step(i, part, model)
        for r in [r for r in running if r.lane.result is not None]:
            running.remove(r)
            if on_end is not None:
                on_end(r.lane)
        i += 1


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
