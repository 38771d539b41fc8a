"""The store's own PNG encoder: any reader gets back exactly the pixels, however the picture is banded."""

from __future__ import annotations

import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from storage import png

DEFLATERS = [pytest.param(png.DEFAULT_DEFLATER, id="default"), pytest.param(png.STDLIB_DEFLATER, id="zlib")]


def picture(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Smooth shapes with grain, like a generated image (pure noise or flat colour would flatter nobody)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    smooth = np.stack([x * 255 // max(width, 1), y * 255 // max(height, 1), (x + y) % 256], axis=-1)
    return ((smooth + rng.integers(0, 24, (height, width, 3))) % 256).astype(np.uint8)


def chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """The (type, payload) chunks of a PNG, each CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    found, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, payload = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert crc == zlib.crc32(kind + payload), f"bad CRC on {kind!r}"
        found.append((kind, payload))
        position += 12 + length
    return found


@pytest.mark.parametrize("deflater", DEFLATERS)
@pytest.mark.parametrize(
    ("width", "height", "band_bytes"),
    [(1, 1, png.BAND_BYTES), (7, 5, png.BAND_BYTES), (7, 5, 1), (176, 96, 5000), (640, 400, png.BAND_BYTES)],
)
def test_pillow_reads_back_exactly_the_pixels(width: int, height: int, band_bytes: int, deflater) -> None:
    pixels = picture(width, height)
    data = png.encode(pixels, deflater, band_bytes=band_bytes)
    with PILImage.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "PNG" and decoded.mode == "RGB" and decoded.size == (width, height)
        assert decoded.tobytes() == pixels.tobytes()


@pytest.mark.parametrize("band_bytes", [1, 300, png.BAND_BYTES])
def test_the_bands_form_one_zlib_stream_whose_checksum_holds(band_bytes: int) -> None:
    pixels = picture(50, 40, seed=3)
    parts = chunks(png.encode(pixels, band_bytes=band_bytes))
    assert [kind for kind, _ in parts][:2] == [b"IHDR", b"IDAT"] and parts[-1] == (b"IEND", b"")
    idat = [payload for kind, payload in parts if kind == b"IDAT"]
    expected_bands = 40 if band_bytes < 150 else -(-40 // (band_bytes // 150))
    assert len(idat) == expected_bands + 1  # one chunk per band, then the Adler-32 trailer
    # zlib.decompress checks the Adler-32 trailer: a wrong combination of band checksums fails here
    filtered = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(40, 151)
    assert (filtered[:, 0] == 2).all()  # the Up filter on every row
    rows = pixels.reshape(40, 150)
    assert (filtered[0, 1:] == rows[0]).all() and (filtered[1:, 1:] == rows[1:] - rows[:-1]).all()


def test_bands_encoded_on_threads_give_the_same_file_as_in_one_thread() -> None:
    pictures = [picture(300, 200, seed=n) for n in range(3)]
    with ThreadPoolExecutor(4) as pool:
        parallel = png.encode_many(pictures, run=pool.map, band_bytes=20_000)
    assert [b"".join(pieces) for pieces in parallel] == [png.encode(p, band_bytes=20_000) for p in pictures]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_adler32_combine_agrees_with_zlib(first: bytes, second: bytes) -> None:
    combined = png.adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
    assert combined == zlib.adler32(first + second)


def test_the_default_is_no_bigger_than_pillows_fast_png_give_or_take_a_tenth() -> None:
    pixels = picture(512, 512, seed=5)
    ours = png.encode(pixels)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    assert len(ours) <= 1.1 * len(buffer.getvalue())


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.zeros((4, 4), np.uint8), "height, width, 3"),
        (np.zeros((4, 4, 4), np.uint8), "height, width, 3"),
        (np.zeros((4, 4, 3), np.float32), "uint8"),
        (np.zeros((0, 4, 3), np.uint8), "1 to 2\\^31-1 pixels"),
    ],
)
def test_what_is_not_8_bit_rgb_is_refused(pixels: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        png.encode(pixels)
