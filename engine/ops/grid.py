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


def grid_cell(grid: ImageData, index: int) -> ImageData:
    """Cell `index` (0-3) of a 2x2 grid."""
    if not 0 <= index < 4:
        raise ValueError(f"grid cell index must be 0-3, got {index}")
    w, h = grid.width // 2, grid.height // 2
    x, y = (index % 2) * w, (index // 2) * h
    return from_array(to_array(grid)[y : y + h, x : x + w])
