"""The 2x2 grid image that a four-image job shows (U1-U4 and V1-V4 point into it)."""

from __future__ import annotations

import numpy as np

from engine.api import ImageData
from engine.ops.images import from_array, to_array


def make_grid(images: list[ImageData] | tuple[ImageData, ...]) -> ImageData | None:
    """Four same-size images as a 2x2 grid (1 2 / 3 4); None for any other count."""
    if len(images) != 4 or len({(i.width, i.height) for i in images}) != 1:
        return None
    a = [to_array(i) for i in images]
    return from_array(np.concatenate([np.concatenate(a[:2], axis=1), np.concatenate(a[2:], axis=1)], axis=0))
