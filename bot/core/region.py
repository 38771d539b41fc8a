"""Vary (Region)'s rules: which images take it, and the mask a front end hands in.

A mask is a PNG of the image's exact size, white (or any bright pixel) where the new content
goes. It is checked before anything is stored: its size is read from the header before any pixel
is decoded, so a small file that claims a huge picture costs nothing.
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, UnidentifiedImageError

from bot.core.rules import JobError
from engine.api import ImageData
from storage.models import JobKind

log = logging.getLogger(__name__)

# Vary (Region) works on a single upscaled image, like Midjourney's.
REGION_SOURCES = frozenset(
    {JobKind.UPSCALE.value, JobKind.UPSCALE_SUBTLE.value, JobKind.UPSCALE_CREATIVE.value}
)
MAX_MASK_BYTES = 4 * 1024 * 1024


class MaskError(JobError):
    """A mask that cannot be used; the message says why."""


def read_mask(data: bytes, width: int, height: int) -> ImageData:
    """The mask in `data` (PNG or any format Pillow reads) as white-on-black RGB of `width`x`height`."""
    if not data:
        raise MaskError("the mask is empty; paint the region to change")
    if len(data) > MAX_MASK_BYTES:
        raise MaskError(f"the mask file is larger than {MAX_MASK_BYTES // (1024 * 1024)} MB")
    try:
        with Image.open(io.BytesIO(data)) as picture:
            if picture.size != (width, height):
                raise MaskError(
                    f"the mask is {picture.width}x{picture.height} but the image is {width}x{height}; "
                    "they must match"
                )
            # A transparent background counts as "keep": alpha joins the brightness.
            rgba = np.asarray(picture.convert("RGBA"))
    except MaskError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise MaskError("the mask is not an image this bot can read (use a PNG)") from exc
    region = (rgba[..., :3].max(axis=2) > 127) & (rgba[..., 3] > 127)
    if not region.any():
        raise MaskError("the mask selects nothing; paint the region to change")
    if region.all():
        raise MaskError("the mask covers the whole image; use Vary (Strong) to change all of it")
    plane = region.astype(np.uint8) * 255
    return ImageData(width, height, np.repeat(plane[..., None], 3, axis=2).tobytes())
