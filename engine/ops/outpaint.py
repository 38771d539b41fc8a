"""outpaint: Zoom Out, Pan and Make Square.

The source goes onto a new canvas (shrunk into the centre for zoom, kept at one side for pan,
centred for square); the new area is pre-filled by stretching the source's edges outwards and
blurring them, masked, and inpainted with the prompt. At the end the source's pixels are pasted
back, so what was kept comes back unchanged.

Zoom keeps the output resolution, like Midjourney (a custom zoom may change the aspect ratio,
keeping about the same pixel count). Pan grows the canvas by half in its direction, up to the
engine's `max_pixels`. Square extends the short side to the long one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageFilter

from engine.api import OutpaintRequest
from engine.ops.checks import check_range, check_seeds, check_size, check_source
from engine.ops.generate import OpContext, OpResult, prepare_request, run_alone
from engine.ops.images import from_array, resize_exact, round_to_step, to_array


@dataclass(frozen=True)
class Canvas:
    """The new picture's size and where the (resized) source sits on it."""

    width: int
    height: int
    x: int
    y: int
    inner_width: int  # the source's size on the canvas
    inner_height: int


def plan_zoom(width: int, height: int, zoom: float, aspect: tuple[int, int] | None, step: int) -> Canvas:
    check_range("zoom", zoom, 1.0, 2.0)
    out_w, out_h = round_to_step(width, step), round_to_step(height, step)
    if aspect is not None:
        a, b = aspect
        if a <= 0 or b <= 0:
            raise ValueError(f"aspect ratio must be two positive numbers, got {a}:{b}")
        check_range("aspect ratio", a / b, 0.25, 4.0)
        area = width * height
        out_w = round_to_step(math.sqrt(area * a / b), step)
        out_h = round_to_step(math.sqrt(area * b / a), step)
    scale = min(out_w / width, out_h / height) / zoom
    inner_w, inner_h = min(out_w, round(width * scale)), min(out_h, round(height * scale))
    if (inner_w, inner_h) == (out_w, out_h):
        raise ValueError(
            "zoom 1.0 without a new aspect ratio leaves nothing to fill; zoom out by more than 1.0"
        )
    return Canvas(out_w, out_h, (out_w - inner_w) // 2, (out_h - inner_h) // 2, inner_w, inner_h)


def plan_pan(width: int, height: int, direction: str, step: int, max_pixels: int) -> Canvas:
    if direction not in ("left", "right", "up", "down"):
        raise ValueError(f"pan direction must be left, right, up or down, got {direction!r}")
    w, h = round_to_step(width, step), round_to_step(height, step)
    if direction in ("left", "right"):
        new_w, new_h = w + round_to_step(w / 2, step), h
    else:
        new_w, new_h = w, h + round_to_step(h / 2, step)
    if new_w * new_h > max_pixels:
        side = math.isqrt(max_pixels)
        raise ValueError(
            f"panning {direction} would make a {new_w}x{new_h} image, more than this engine's maximum of "
            f"{max_pixels} pixels ({side}x{side}); zoom out instead, which keeps the size"
        )
    x = new_w - w if direction == "left" else 0
    y = new_h - h if direction == "up" else 0
    return Canvas(new_w, new_h, x, y, w, h)


def plan_square(width: int, height: int, step: int, max_pixels: int) -> Canvas:
    w, h = round_to_step(width, step), round_to_step(height, step)
    if w == h:
        raise ValueError(
            "the image is already square; Make Square extends the short side of a non-square image"
        )
    side = max(w, h)
    if side * side > max_pixels:
        raise ValueError(
            f"a square of {side}x{side} is more than this engine's maximum of {max_pixels} pixels"
        )
    return Canvas(side, side, (side - w) // 2, (side - h) // 2, w, h)


def prefill(source: Image.Image, canvas: Canvas) -> tuple[Image.Image, np.ndarray]:
    """The canvas with the source placed and its edges stretched into the new area (blurred there),
    and the mask: 1 where new content goes."""
    inner = np.asarray(
        source.convert("RGB").resize((canvas.inner_width, canvas.inner_height), Image.Resampling.LANCZOS)
    )
    pads = (
        (canvas.y, canvas.height - canvas.y - canvas.inner_height),
        (canvas.x, canvas.width - canvas.x - canvas.inner_width),
        (0, 0),
    )
    stretched = np.pad(inner, pads, mode="edge")
    radius = max(2, min(canvas.width, canvas.height) // 16)
    blurred = np.asarray(Image.fromarray(stretched).filter(ImageFilter.GaussianBlur(radius)))
    mask = np.ones((canvas.height, canvas.width), dtype=np.uint8)
    box = (slice(canvas.y, canvas.y + canvas.inner_height), slice(canvas.x, canvas.x + canvas.inner_width))
    mask[box] = 0
    filled = np.where(mask[..., None] == 1, blurred, stretched)
    return Image.fromarray(filled.astype(np.uint8)), mask


def paste_back(image: np.ndarray, source: Image.Image, canvas: Canvas) -> np.ndarray:
    inner = np.asarray(
        source.convert("RGB").resize((canvas.inner_width, canvas.inner_height), Image.Resampling.LANCZOS)
    )
    out = image.copy()
    out[canvas.y : canvas.y + canvas.inner_height, canvas.x : canvas.x + canvas.inner_width] = inner
    return out


def plan(req: OutpaintRequest, step: int, max_pixels: int) -> Canvas:
    modes = sum([req.zoom is not None, req.pan is not None, bool(req.square)])
    if modes != 1:
        raise ValueError("an outpaint request needs exactly one of zoom, pan or square")
    if req.aspect is not None and req.zoom is None:
        raise ValueError("a new aspect ratio goes only with zoom")
    w, h = req.source.width, req.source.height
    if req.zoom is not None:
        return plan_zoom(w, h, float(req.zoom), req.aspect, step)
    if req.pan is not None:
        return plan_pan(w, h, req.pan, step, max_pixels)
    return plan_square(w, h, step, max_pixels)


def exact_canvas(req: OutpaintRequest, canvas: Canvas, step: int) -> Canvas:
    """The canvas in the source's own pixels, for a source whose sides are not whole size steps.

    Planning and inpainting happen at the nearest size the model can make (`canvas`); the result
    is then resized to this canvas and the source pasted back at its exact size, so pan and square
    keep every source pixel and zoom keeps the source's resolution. For a source of whole steps it
    is `canvas` itself.
    """
    w, h = req.source.width, req.source.height
    sx, sy = w / round_to_step(w, step), h / round_to_step(h, step)
    if (sx, sy) == (1.0, 1.0) or req.aspect is not None:
        return canvas  # a new aspect ratio makes a new size of whole steps anyway
    if req.square:
        side = max(w, h)
        return Canvas(side, side, (side - w) // 2, (side - h) // 2, w, h)
    width, height = round(canvas.width * sx), round(canvas.height * sy)
    inner_w, inner_h = (
        (w, h) if req.pan is not None else (round(canvas.inner_width * sx), round(canvas.inner_height * sy))
    )
    if req.zoom is not None:
        width, height = w, h  # zoom keeps the resolution
    x = min(round(canvas.x * sx), width - inner_w)
    y = min(round(canvas.y * sy), height - inner_h)
    return Canvas(width, height, x, y, inner_w, inner_h)


def run_outpaint(ctx: OpContext, req: OutpaintRequest) -> OpResult:
    preset = ctx.model.preset
    step = preset.size_step
    check_source(req.source, step, ctx.max_pixels)
    check_seeds(req.seeds)
    canvas = plan(req, step, ctx.max_pixels)
    check_size(canvas.width, canvas.height, step, ctx.max_pixels)
    final = exact_canvas(req, canvas, step)
    check_size(final.width, final.height, 1, ctx.max_pixels)
    source = req.source.to_pil()
    init, mask = prefill(source, canvas)
    inpainting = replace(ctx, model=ctx.model.for_inpainting())
    gen = prepare_request(
        inpainting,
        req,
        width=canvas.width,
        height=canvas.height,
        strength=preset.outpaint_strength,
        init=init,
        generate_mask=mask,
    )
    images = run_alone(inpainting.model, gen)
    if final != canvas:
        images = [resize_exact(i, final.width, final.height) for i in images]
    images = [from_array(paste_back(to_array(i), source, final)) for i in images]
    return OpResult(images=images, seeds=list(req.seeds), timings=gen.timings)
