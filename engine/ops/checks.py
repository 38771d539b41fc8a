"""Request checks: a request the engine cannot do fails with a reason a user can act on.

Each check raises `ValueError` with the message the user sees; nothing has run yet, so the
engine stays healthy and the next job is unaffected.
"""

from __future__ import annotations

import math

from engine.api import ImageData

MAX_SEEDS = 8
MAX_STEPS = 150
# The fewest steps an img2img pass is given when `--quality` lowers its budget (see effective_steps).
MIN_IMG2IMG_STEPS = 4


def check_size(width: int, height: int, step: int, max_pixels: int, what: str = "image") -> None:
    """Refuse any size the model cannot make exactly: never round it behind the user's back."""
    if not isinstance(width, int) or not isinstance(height, int):
        raise ValueError(f"{what} size must be whole numbers of pixels, got {width!r}x{height!r}")
    if width < step or height < step:
        raise ValueError(
            f"{what} size {width}x{height} is too small: this model makes images of at least "
            f"{step}x{step} pixels"
        )
    if width % step or height % step:
        raise ValueError(
            f"{what} size {width}x{height} must be a multiple of {step} pixels on each side for this model"
        )
    if width * height > max_pixels:
        side = math.isqrt(max_pixels)
        raise ValueError(
            f"{what} size {width}x{height} is {width * height} pixels, more than this engine's maximum of "
            f"{max_pixels} ({side}x{side})"
        )


def check_seeds(seeds: tuple[int, ...] | list[int]) -> None:
    if not seeds:
        raise ValueError("the request has no seeds: one seed per image is needed")
    if len(seeds) > MAX_SEEDS:
        raise ValueError(f"at most {MAX_SEEDS} images per job, got {len(seeds)} seeds")
    for seed in seeds:
        if not isinstance(seed, int) or not 0 <= seed <= 0xFFFFFFFF:
            raise ValueError(f"seed {seed!r} is out of range: seeds are whole numbers 0-4294967295")


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value:g}")


def check_source(image: ImageData | None, min_side: int, max_pixels: int) -> None:
    if image is None:
        raise ValueError("the request needs a source image")
    if not isinstance(image, ImageData):
        raise ValueError(f"the source image must be ImageData, got {type(image).__name__}")
    if image.width < min_side or image.height < min_side:
        raise ValueError(
            f"the source image is {image.width}x{image.height}; it must be at least {min_side} pixels a side"
        )
    if image.width * image.height > max_pixels:
        raise ValueError(
            f"the source image is {image.width}x{image.height}, more than this engine's maximum "
            f"of {max_pixels} pixels"
        )


def effective_steps(steps: int, quality: float, strength: float = 1.0) -> int:
    """The steps a job runs: `--quality` multiplies the step budget, for every operation alike.

    An img2img pass (`strength` < 1: vary, upscale, an image prompt) runs only `strength` x steps
    of them, so a budget that `--quality` lowers is floored where a real refine remains: at least
    `MIN_IMG2IMG_STEPS`, and enough for one denoising step at this strength (`--quality .25` on a
    low-strength upscale of an 8-step model would otherwise leave none and fail). The floor never
    goes above the steps asked for: quality must not be the reason a job fails or slows.
    """
    check_range("steps", steps, 1, MAX_STEPS)
    check_range("quality", quality, 0.1, 4)
    check_range("strength", strength, 0.01, 1.0)
    budget = max(1, min(MAX_STEPS * 2, round(steps * quality)))
    if strength < 1.0:
        needed = MIN_IMG2IMG_STEPS
        while int(needed * strength) < 1:  # the sampler keeps int(steps x strength) of them
            needed += 1
        budget = max(budget, min(needed, steps))
    return budget
