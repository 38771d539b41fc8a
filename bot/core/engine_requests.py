"""A job row becomes an `EngineRequest` (the dispatcher asks for it when the job starts).

The row's accepted prompt (never a second reading of its text), its seeds and, for a derived job,
the source cell's pixels; a `ValueError` with the reason when it cannot be built.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from bot.core.blend_request import blend_request
from bot.core.inputs import load_input_image
from bot.core.ports import JobStore
from bot.core.references import load_references
from bot.core.rules import GRID_CELLS, accepted_prompt, cell_seed
from engine.api import (
    EngineRequest,
    ImageData,
    ImagineRequest,
    InpaintRequest,
    LoraChoice,
    ModelInfo,
    OutpaintRequest,
    PromptSpec,
    UpscaleRequest,
    VaryRequest,
)
from storage.models import Job, JobKind

TURBO_QUALITY = 0.5  # Turbo mode: half the steps (the lowest --quality, .25, stays the floor)


def _quality(quality: float, params: dict[str, Any]) -> float:
    """The step budget multiplier: the prompt's `--quality`, halved in Turbo mode."""
    if params.get("speed") == "turbo":
        return max(0.25, float(quality) * TURBO_QUALITY)
    return float(quality)


async def build_request(job: Job, store: JobStore, info: ModelInfo) -> EngineRequest:
    """The engine request for a job row; a ValueError (with the reason) when it cannot be built."""
    if job.kind == JobKind.BLEND:
        return await blend_request(store.files, job)
    prompt = accepted_prompt(job)
    spec = PromptSpec(
        segments=tuple((text, float(weight)) for text, weight in prompt.segments),
        negative=tuple(prompt.negative),
    )
    params = job.params or {}
    chosen = prompt.lora_choice
    lora = LoraChoice(*chosen) if chosen is not None else None
    seed = job.seed if job.seed is not None else 0
    seeds = tuple(params.get("seeds") or [cell_seed(seed, i) for i in range(GRID_CELLS)])
    kind = JobKind(job.kind)
    if kind in (JobKind.IMAGINE, JobKind.REROLL):
        init_image = None
        if params.get("init_image"):
            init_image = await load_input_image(store.files, params["init_image"])
        return ImagineRequest(
            job_id=job.id,
            prompt=spec,
            seeds=seeds,
            width=job.width or info.native_width,
            height=job.height or info.native_height,
            quality=_quality(prompt.quality, params),
            chaos=int(prompt.chaos),
            stylize=int(prompt.stylize),
            style=prompt.style,
            weird=int(prompt.weird),
            stop=int(prompt.stop),
            tile=bool(prompt.tile),
            init_image=init_image,
            image_weight=prompt.image_weight,
            lora=lora,
            references=await load_references(store.files, params),
        )
    source = await _source_image(job, store)
    # A derived job keeps its prompt's --quality; the engine alone turns it into steps.
    quality = _quality(prompt.quality, params)
    if kind in (JobKind.VARY, JobKind.VARY_SUBTLE, JobKind.VARY_STRONG):
        default: Literal["subtle", "strong"] = "subtle" if kind is JobKind.VARY_SUBTLE else "strong"
        strength: Literal["subtle", "strong"] | float = params.get("strength") or default
        return VaryRequest(
            job_id=job.id,
            source=source,
            prompt=spec,
            seeds=seeds,
            strength=strength,
            quality=quality,
            stylize=int(prompt.stylize),
            style=prompt.style,
            tile=bool(prompt.tile),
            lora=lora,
        )
    if kind in (JobKind.UPSCALE_SUBTLE, JobKind.UPSCALE_CREATIVE):
        mode: Literal["subtle", "creative"] = "creative" if kind is JobKind.UPSCALE_CREATIVE else "subtle"
        return UpscaleRequest(
            job_id=job.id, source=source, prompt=spec, seed=seeds[0], mode=mode, quality=quality
        )
    if kind is JobKind.ZOOM:
        aspect = params.get("aspect")
        return OutpaintRequest(
            job_id=job.id,
            source=source,
            prompt=spec,
            seeds=seeds,
            zoom=float(params.get("zoom", 2.0)),
            aspect=tuple(aspect) if aspect else None,
            quality=quality,
            lora=lora,
        )
    if kind is JobKind.PAN:
        return OutpaintRequest(
            job_id=job.id,
            source=source,
            prompt=spec,
            seeds=seeds,
            pan=params["direction"],
            quality=quality,
            lora=lora,
        )
    if kind is JobKind.SQUARE:
        return OutpaintRequest(
            job_id=job.id, source=source, prompt=spec, seeds=seeds, square=True, quality=quality, lora=lora
        )
    if kind is JobKind.REGION:
        mask = await asyncio.to_thread(store.files.open_image, params["mask"])
        return InpaintRequest(
            job_id=job.id,
            source=source,
            mask=ImageData.from_pil(mask),
            prompt=spec,
            seeds=seeds,
            quality=quality,
        )
    raise ValueError(f"job {job.id} of kind {job.kind} needs no engine work")


async def _source_image(job: Job, store: JobStore) -> ImageData:
    parent = await store.get_job(job.parent_id) if job.parent_id else None
    if parent is None:
        raise ValueError("the source image of this job is gone (its job was deleted)")
    cells = parent.cells
    index = job.parent_index or 0
    if index >= len(cells):
        raise ValueError(f"the source job {parent.id} has no image {index + 1}")
    picture = await asyncio.to_thread(store.files.open_image, cells[index].path)
    return ImageData.from_pil(picture)
