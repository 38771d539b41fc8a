"""Decoding image prompts safely: untrusted bytes (a download or a Discord attachment) to RGB pixels.

Image types only (PNG, JPEG, WebP, GIF's first frame), decoded by Pillow restricted to those
formats, with a pixel limit checked before any pixel is decoded (decompression bombs), and at most
`IMAGINE_MAX_IMAGE_DECODES` decodes at once. Fetching a URL is bot/core/fetch.py.
"""

from __future__ import annotations

import asyncio
import io
import weakref
from collections.abc import Callable

from PIL import Image, ImageOps, UnidentifiedImageError

from engine.api import ImageData

MAX_BYTES = 10 * 1024 * 1024
"""The largest image file accepted (Discord's own free upload limit is of the same order)."""

MAX_PIXELS = 50_000_000
"""The largest image accepted, in pixels: room for a 48 MP phone photo, far from a bomb."""

MAX_SIDE = 2048
"""Decoded images are scaled down to fit this side: the models work near 1 MP anyway."""

MAX_ASPECT = 4
"""Image prompts are at most 4:1 either way, like Midjourney's; a 49,000,000 x 1 strip is no photo."""

MAX_DECODES = 2
"""How many image prompts are decoded at once by default (`IMAGINE_MAX_IMAGE_DECODES`): each
large one costs its full pixel buffer while it decodes, so many at once could exhaust memory."""

ALLOWED_CONTENT_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"})
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


class ImageFetchError(ValueError):
    """An image prompt was refused or could not be fetched; the message is for the member."""


def too_large(max_bytes: int) -> str:
    limit = f"{max_bytes / (1024 * 1024):g} MB" if max_bytes >= 1024 * 1024 else f"{max_bytes} bytes"
    return f"The image is larger than {limit}; please use a smaller file."


def check_content_type(content_type: str | None) -> None:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    if not kind:
        raise ImageFetchError("The link did not say what it is; only PNG, JPEG, WebP and GIF images work.")
    if kind not in ALLOWED_CONTENT_TYPES:
        raise ImageFetchError(f"The link is {kind}, not an image; only PNG, JPEG, WebP and GIF images work.")


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def decode_image(
    data: bytes,
    content_type: str | None = None,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int | None = MAX_SIDE,
) -> ImageData:
    """Decode untrusted image bytes (a download or a Discord attachment) into RGB pixels.

    Only PNG, JPEG, WebP and GIF are parsed (Pillow is not allowed to guess among its other,
    less-hardened formats). The pixel count is checked from the header before decoding, so a small
    file that would expand into gigabytes is refused without expanding it. An animation gives its
    first frame; a photo's EXIF orientation is applied; a large image is scaled to fit `max_side`.
    """

    if content_type is not None:
        check_content_type(content_type)
    if not data:
        raise ImageFetchError("The image file is empty.")
    try:
        # Opening reads the header only. Pillow's own guard (Image.MAX_IMAGE_PIXELS) raises here for
        # the most extreme sizes; ours, lower (and below Pillow's warning level), comes next.
        with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise ImageFetchError("The image has no pixels.")
            if width * height > max_pixels:
                raise ImageFetchError(_bomb((width, height), max_pixels))
            if max(width, height) > MAX_ASPECT * min(width, height):
                raise ImageFetchError(
                    f"The image is {width}x{height} pixels; image prompts must be between 1:{MAX_ASPECT} "
                    f"and {MAX_ASPECT}:1 (crop it closer to square)."
                )
            image.seek(0)  # GIF / animated WebP: the first frame
            if max_side is not None and image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))  # decode JPEGs at a reduced scale
            image.load()
            frame = ImageOps.exif_transpose(image) or image
            rgb = frame.convert("RGB")
    except ImageFetchError:
        raise
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (Image.MAX_IMAGE_PIXELS) fired while reading the header.
        raise ImageFetchError(_bomb(None, max_pixels)) from exc
    except UnidentifiedImageError as exc:
        raise ImageFetchError("That file is not a PNG, JPEG, WebP or GIF image.") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageFetchError("The image file is damaged or incomplete and could not be read.") from exc
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return ImageData.from_pil(rgb)


def load_attachment_bytes(
    data: bytes, content_type: str | None = None, *, max_bytes: int = MAX_BYTES
) -> ImageData:
    """A Discord attachment's bytes as an image prompt: the same size cap and checks as a download.

    The bytes come from Discord's CDN (no address checks needed), but the file is still the
    member's, so it is capped and decoded exactly like a fetched one.
    """
    if len(data) > max_bytes:
        raise ImageFetchError(too_large(max_bytes))
    return decode_image(data, content_type)


_gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()
_decode_limit = MAX_DECODES


def configure_decodes(limit: int) -> None:
    """At most `limit` image decodes at once in this process (from `IMAGINE_MAX_IMAGE_DECODES`)."""
    global _decode_limit
    if limit < 1:
        raise ValueError(f"the decode limit must be at least 1, got {limit}")
    _decode_limit = limit
    _gates.clear()


async def decode_bounded(
    data: bytes, content_type: str | None = None, *, decode: Callable[..., ImageData] | None = None
) -> ImageData:
    """`decode_image` on a worker thread, at most the configured number at once.

    Uploads wait their turn here rather than all expanding into pixels together. One gate per
    event loop (a semaphore belongs to the loop it is used on). `decode` is the test seam.
    """
    loop = asyncio.get_running_loop()
    gate = _gates.get(loop)
    if gate is None:
        gate = _gates[loop] = asyncio.Semaphore(_decode_limit)
    async with gate:
        # CPU work on untrusted bytes: off the event loop.
        return await asyncio.to_thread(decode or decode_image, data, content_type)


async def decode_attachment(data: bytes, content_type: str | None = None) -> ImageData:
    """`load_attachment_bytes` through the decode gate."""
    return await decode_bounded(data, content_type, decode=load_attachment_bytes)


def _bomb(size: tuple[int, int] | None, max_pixels: int) -> str:
    shown = f"is {size[0]}x{size[1]} pixels," if size else "has"
    return (
        f"The image {shown} more than the {max_pixels / 1e6:g} megapixels that can be decoded safely; "
        "please use a smaller image."
    )
