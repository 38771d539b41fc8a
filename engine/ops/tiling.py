"""`--tile`: seamless output by making every convolution wrap around the image edges."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def circular_padding(*modules: torch.nn.Module, enabled: bool = True) -> Iterator[None]:
    """Switch the modules' Conv2d layers to circular padding for the duration, then restore them.

    With every convolution wrapping around, the left edge sees the right edge as its neighbour (and
    the top the bottom), so the picture continues across the border and tiles without a seam.
    The change is temporary because the same resident weights serve the next, untiled job.
    """
    if not enabled:
        yield
        return
    changed: list[tuple[torch.nn.Conv2d, str]] = []
    for module in modules:
        for layer in module.modules():
            if isinstance(layer, torch.nn.Conv2d) and layer.padding_mode != "circular":
                changed.append((layer, layer.padding_mode))
                layer.padding_mode = "circular"
    try:
        yield
    finally:
        for layer, mode in changed:
            layer.padding_mode = mode
