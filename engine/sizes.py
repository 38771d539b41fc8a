"""Sizes: what `--ar` asks of a model, and the shapes the engine warms up.

Part of the engine's contract, re-exported by `engine.api`: import it from there. Pure arithmetic
on the standard library.
"""

from __future__ import annotations

import math

# The aspect ratios most prompts use (Midjourney's common `--ar` values). The engine compiles and
# warms up the model at the size each one gives, so those jobs never pay for a compilation.
COMMON_ASPECTS: tuple[tuple[int, int], ...] = ((1, 1), (16, 9), (9, 16), (3, 2), (2, 3), (4, 5), (5, 4))


def dimensions_for(
    aspect: tuple[int, int], native_width: int, native_height: int, step: int
) -> tuple[int, int]:
    """Width and height for `--ar`: multiples of `step`, near the model's native pixel area.

    Models draw best near the pixel count they were trained at, and their latents need sides in
    multiples of `step` (64 for the SD families), so the exact ratio is rarely reachable. Every
    nearby multiple is scored by how far its ratio is from the request plus half how far its area
    is from native (both on a log scale); the ratio dominates, the area keeps it from drifting.
    At 512x512 and step 64, 16:9 gives 704x384 (3% off); at 1024x1024, 1344x768.
    """
    aspect_w, aspect_h = aspect
    if aspect_w <= 0 or aspect_h <= 0:
        raise ValueError(f"aspect sides must be positive, got {aspect_w}:{aspect_h}")
    if native_width <= 0 or native_height <= 0 or step <= 0:
        raise ValueError(
            f"native size and step must be positive, got {native_width}x{native_height} step {step}"
        )
    ratio = aspect_w / aspect_h
    area = native_width * native_height
    ideal_height = math.sqrt(area / ratio) / step
    best: tuple[float, int, int, int] | None = None
    for height_steps in range(max(1, math.floor(ideal_height / 2)), math.ceil(ideal_height * 2) + 1):
        height = height_steps * step
        for target in (height * ratio / step, area / height / step):
            for width_steps in {max(1, math.floor(target)), max(1, math.ceil(target))}:
                width = width_steps * step
                cost = abs(math.log(width / height / ratio)) + 0.5 * abs(math.log(width * height / area))
                candidate = (round(cost, 12), width * height, width, height)
                if best is None or candidate < best:
                    best = candidate
    assert best is not None
    return best[2], best[3]


def aspect_buckets(native_width: int, native_height: int, step: int) -> list[tuple[int, int]]:
    """The distinct (width, height) sizes of `COMMON_ASPECTS` for a model, square first."""
    sizes = [dimensions_for(a, native_width, native_height, step) for a in COMMON_ASPECTS]
    return list(dict.fromkeys(sizes))
