"""imagine: four images from one prompt, each cell from its own seed (the grid is made by the core)."""

from __future__ import annotations

import torch

from engine.api import ImagineRequest
from engine.ops.checks import check_range, check_seeds, check_size
from engine.ops.generate import Generation, OpContext, OpResult, prepare_request, run_alone
from engine.ops.images import cover
from engine.ops.references import ReferenceAdapter, references_applied


def image_prompt_strength(image_weight: float | None) -> float:
    """`--iw` 0-3 to an img2img strength: the higher the weight, the more of the image survives."""
    iw = 1.0 if image_weight is None else image_weight
    return min(1.0, max(0.25, 1.0 - 0.25 * iw))


def prepare_imagine(
    ctx: OpContext, req: ImagineRequest, image_embeds: torch.Tensor | None = None
) -> Generation:
    """Check the request and set up its generation; `generate_together` runs it, alone or batched."""
    preset = ctx.model.preset
    check_size(req.width, req.height, preset.size_step, ctx.max_pixels)
    check_seeds(req.seeds)
    check_range("chaos", req.chaos, 0, 100)
    check_range("stylize", req.stylize, 0, 1000)
    check_range("weird", req.weird, 0, 3000)
    check_range("stop", req.stop, 10, 100)
    if req.image_weight is not None:
        check_range("image weight (--iw)", req.image_weight, 0, 3)
    init = None
    strength = 1.0
    if req.init_image is not None:
        init = cover(req.init_image.to_pil(), req.width, req.height)
        strength = image_prompt_strength(req.image_weight)
    return prepare_request(
        ctx,
        req,
        width=req.width,
        height=req.height,
        strength=strength,
        stylize=req.stylize,
        style=req.style,
        chaos=req.chaos,
        weird=req.weird,
        stop=req.stop,
        tile=req.tile,
        init=init,
        image_embeds=image_embeds,
    )


def run_imagine(ctx: OpContext, req: ImagineRequest, adapter: ReferenceAdapter | None = None) -> OpResult:
    """One imagine job alone; with `--sref`/`--oref` pictures, through the operator's `adapter`."""
    with references_applied(ctx.model, adapter, req.references) as image_embeds:
        gen = prepare_imagine(ctx, req, image_embeds)
        return OpResult(images=run_alone(ctx.model, gen), seeds=list(req.seeds), timings=gen.timings)
