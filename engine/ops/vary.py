"""vary: four new images near the source (img2img at the preset's Subtle or Strong strength)."""

from __future__ import annotations

from engine.api import VaryRequest
from engine.ops.checks import check_range, check_seeds, check_size, check_source
from engine.ops.generate import Generation, OpContext, OpResult, prepare_request, run_alone
from engine.ops.images import cover, resize_exact, round_to_step


def vary_strength(req: VaryRequest, subtle: float, strong: float) -> float:
    if req.strength == "subtle":
        return subtle
    if req.strength == "strong":
        return strong
    if isinstance(req.strength, int | float) and not isinstance(req.strength, bool):
        check_range("vary strength", float(req.strength), 0.01, 1.0)
        return float(req.strength)
    raise ValueError(f"vary strength must be 'subtle', 'strong' or a number 0-1, got {req.strength!r}")


def vary_size(req: VaryRequest, step: int) -> tuple[int, int]:
    """The size the variations are made at: the source's, on whole size steps."""
    return round_to_step(req.source.width, step), round_to_step(req.source.height, step)


def prepare_vary(ctx: OpContext, req: VaryRequest) -> Generation:
    """Check the request and set up its generation; `generate_together` runs it, alone or batched."""
    preset = ctx.model.preset
    step = preset.size_step
    check_source(req.source, step, ctx.max_pixels)
    check_seeds(req.seeds)
    check_range("stylize", req.stylize, 0, 1000)
    strength = vary_strength(req, preset.vary_subtle, preset.vary_strong)
    # A source whose sides are not whole size steps (an upload, an odd upscale) is varied at the
    # nearest size the model can make, and the results are resized back: the variations always
    # have the source's exact size.
    width, height = vary_size(req, step)
    check_size(width, height, step, ctx.max_pixels)
    gen = prepare_request(
        ctx,
        req,
        width=width,
        height=height,
        strength=strength,
        stylize=req.stylize,
        style=req.style,
        tile=req.tile,
        init=cover(req.source.to_pil(), width, height),
    )
    source_w, source_h = req.source.width, req.source.height
    gen.finish = lambda images: [resize_exact(i, source_w, source_h) for i in images]
    return gen


def run_vary(ctx: OpContext, req: VaryRequest) -> OpResult:
    gen = prepare_vary(ctx, req)
    return OpResult(images=run_alone(ctx.model, gen), seeds=list(req.seeds), timings=gen.timings)
