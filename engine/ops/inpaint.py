"""inpaint: Vary (Region). New content inside a mask, the rest of the picture kept exactly.

The source and the mask are brought to the nearest size the model can make (whole size steps),
the masked area is inpainted with the prompt on the model's inpainting path (the dedicated
inpainting model when configured, else the base weights with the known region held on the noise
schedule, as outpainting does), and the result is brought back to the source's size. Finally the
source is composited over it outside the mask, so every unmasked pixel is the source's own.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PIL import Image

from engine.api import ImageData, InpaintRequest
from engine.ops.checks import check_range, check_seeds, check_source, effective_steps
from engine.ops.generate import OpContext, OpResult, generate
from engine.ops.images import from_array, resize_exact, round_to_step, to_array


def region_of(mask: ImageData, width: int, height: int) -> np.ndarray:
    """The mask as booleans (True: redraw); refused when its size is not the source's or it is empty."""
    if (mask.width, mask.height) != (width, height):
        raise ValueError(
            f"the mask is {mask.width}x{mask.height} but the image is {width}x{height}; they must match"
        )
    region = to_array(mask).max(axis=2) > 127
    if not region.any():
        raise ValueError("the mask selects nothing: paint the region to change")
    if region.all():
        raise ValueError("the mask covers the whole image: use Vary (Strong) to change all of it")
    return region


def run_inpaint(ctx: OpContext, req: InpaintRequest) -> OpResult:
    preset = ctx.model.preset
    step = preset.size_step
    check_source(req.source, step, ctx.max_pixels)
    check_seeds(req.seeds)
    region = region_of(req.mask, req.source.width, req.source.height)
    strength = preset.outpaint_strength if req.strength is None else float(req.strength)
    check_range("strength", strength, 0.05, 1.0)
    guidance = preset.default_guidance if req.guidance is None else req.guidance
    check_range("guidance", guidance, 0, 30)
    steps = effective_steps(preset.default_steps if req.steps is None else req.steps, req.quality, strength)
    width, height = round_to_step(req.source.width, step), round_to_step(req.source.height, step)
    source = req.source.to_pil()
    init = (
        source.resize((width, height), Image.Resampling.LANCZOS) if source.size != (width, height) else source
    )
    # Nearest-neighbour keeps the mask hard; a pixel of the region never shrinks out of it.
    work_mask = Image.fromarray(region.astype(np.uint8) * 255).resize(
        (width, height), Image.Resampling.NEAREST
    )
    timings: dict[str, float] = {}
    images = generate(
        replace(ctx, model=ctx.model.for_inpainting()),
        prompt=req.prompt,
        seeds=list(req.seeds),
        width=width,
        height=height,
        steps=steps,
        guidance=guidance,
        init=init,
        strength=strength,
        generate_mask=(np.asarray(work_mask) > 127).astype(np.uint8),
        timings=timings,
    )
    kept = to_array(req.source)
    out = []
    for image in images:
        if (image.width, image.height) != (req.source.width, req.source.height):
            image = resize_exact(image, req.source.width, req.source.height)
        out.append(from_array(np.where(region[..., None], to_array(image), kept)))
    return OpResult(images=out, seeds=list(req.seeds), timings=timings)
