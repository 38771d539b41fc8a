"""A fast PNG encoder for the store: one fixed filter, a fast deflate, and bands that compress in parallel.

Pillow's PNG writer tries every filter on every row and deflates the whole picture in one
thread: about 100 ms for a 1024x1024 cell and 400 ms for its 2048x2048 grid, all of it on the
path between "the engine finished" and "the user sees the result". The pictures we store are
generated art, where the Up filter (each row minus the row above) does as well as the adaptive
choice, so this module filters with Up (one numpy subtraction) and deflates with ISA-L (`isal`, several
times faster than zlib at level 1, for the same or a smaller file) when it is installed, with the
standard library's zlib otherwise.

A picture is cut into horizontal bands of about `BAND_BYTES`. Each band is deflated on its own
(ending on a byte boundary with a sync flush, as pigz does), so the bands of all of a job's
pictures can be compressed at once on every core; concatenated, they form one valid zlib stream
whose Adler-32 is combined from the bands' checksums. Each band becomes its own IDAT chunk, so
its CRC is computed in the same task. The output is a plain 8-bit RGB PNG any reader opens.
"""

from __future__ import annotations

import struct
import types
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_deflate_lib: types.ModuleType
try:  # ISA-L: the same deflate format, several times faster at its lowest levels
    from isal import isal_zlib as _deflate_lib
except ImportError:  # pragma: no cover - depends on the installation
    _deflate_lib = zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
BAND_BYTES = 1 << 20  # ~1 MiB of pixels per band: enough to compress well, small enough to share out
UP_FILTER = 2  # PNG filter type: each byte minus the byte above it
_ZLIB_HEADER = b"\x78\x01"  # deflate, 32 KiB window, "fastest" level hint
_ADLER_MOD = 65521


@dataclass(frozen=True)
class Deflater:
    """Which deflate implementation and level make the bands (a zlib-compatible module)."""

    module: Any = _deflate_lib
    level: int = 1

    @property
    def name(self) -> str:
        return f"{'isal' if self.module is not zlib else 'zlib'} level {self.level}"


DEFAULT_DEFLATER = Deflater()
STDLIB_DEFLATER = Deflater(zlib, 1)


@dataclass(frozen=True)
class Band:
    """Rows [first, stop) of one picture, to filter and deflate as one task."""

    rows: np.ndarray  # the whole picture, (height, width * 3) uint8
    first: int
    stop: int
    number: int  # band number within the picture

    def encode(self, deflater: Deflater) -> tuple[bytes, int, int]:
        """The band's IDAT chunk, the Adler-32 of its filtered bytes and their length.

        numpy and the deflater release the GIL, so bands on different threads run in parallel.
        """
        rows, first, stop = self.rows, self.first, self.stop
        filtered = np.empty((stop - first, rows.shape[1] + 1), dtype=np.uint8)
        filtered[:, 0] = UP_FILTER
        if first == 0:  # the first row's "row above" is zeros, as PNG defines
            filtered[0, 1:] = rows[0]
            np.subtract(rows[1:stop], rows[: stop - 1], out=filtered[1:, 1:])  # uint8: modulo 256
        else:
            np.subtract(rows[first:stop], rows[first - 1 : stop - 1], out=filtered[:, 1:])
        raw = filtered.data
        compressor = deflater.module.compressobj(deflater.level, zlib.DEFLATED, -15)
        out = [_ZLIB_HEADER] if self.number == 0 else []
        out.append(compressor.compress(raw))
        last = stop == rows.shape[0]
        out.append(compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH))
        return _chunk(b"IDAT", b"".join(out)), deflater.module.adler32(raw), filtered.size


@dataclass(frozen=True)
class PlannedPicture:
    """One picture cut into bands; `finish` puts the encoded bands together into the PNG's pieces."""

    width: int
    height: int
    bands: list[Band]

    def finish(self, encoded: Sequence[tuple[bytes, int, int]]) -> list[bytes]:
        adler = 1
        for _, band_adler, length in encoded:
            adler = adler32_combine(adler, band_adler, length)
        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return [
            SIGNATURE,
            _chunk(b"IHDR", header),
            *(chunk for chunk, _, _ in encoded),
            _chunk(b"IDAT", adler.to_bytes(4, "big")),  # the zlib trailer, in a chunk of its own
            _chunk(b"IEND", b""),
        ]


def plan(pixels: np.ndarray, band_bytes: int = BAND_BYTES) -> PlannedPicture:
    """Cut an RGB picture, a (height, width, 3) uint8 array, into bands to filter and deflate."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise ValueError(
            f"the PNG encoder takes (height, width, 3) uint8 pixels, got {pixels.shape} {pixels.dtype}"
        )
    height, width, _ = pixels.shape
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise ValueError(f"a PNG is 1 to 2^31-1 pixels wide and high, got {width}x{height}")
    rows = np.ascontiguousarray(pixels).reshape(height, width * 3)
    per_band = max(1, band_bytes // (width * 3))
    bands = [
        Band(rows, first, min(height, first + per_band), number)
        for number, first in enumerate(range(0, height, per_band))
    ]
    return PlannedPicture(width, height, bands)


def encode_many(
    pictures: Sequence[np.ndarray],
    run: Callable[[Callable[[Band], tuple[bytes, int, int]], list[Band]], Iterable[tuple[bytes, int, int]]]
    | None = None,
    deflater: Deflater = DEFAULT_DEFLATER,
    band_bytes: int = BAND_BYTES,
) -> list[list[bytes]]:
    """PNG pieces (join them for the file) for each picture; `run` maps the band work, e.g. `pool.map`."""
    plans = [plan(pixels, band_bytes) for pixels in pictures]
    bands = [band for planned in plans for band in planned.bands]
    mapper = run or (lambda fn, items: [fn(item) for item in items])
    encoded = list(mapper(lambda band: band.encode(deflater), bands))
    results: list[list[bytes]] = []
    position = 0
    for planned in plans:
        count = len(planned.bands)
        results.append(planned.finish(encoded[position : position + count]))
        position += count
    return results


def encode(pixels: np.ndarray, deflater: Deflater = DEFAULT_DEFLATER, band_bytes: int = BAND_BYTES) -> bytes:
    """One picture's PNG file, encoded in this thread."""
    return b"".join(encode_many([pixels], deflater=deflater, band_bytes=band_bytes)[0])


def adler32_combine(adler1: int, adler2: int, length2: int) -> int:
    """The Adler-32 of A+B from those of A and of B and B's length (zlib's adler32_combine).

    A = 1 + sum of the bytes, B = sum of the running A's; appending n bytes adds (A1 - 1) * n to B.
    """
    a1, b1 = adler1 & 0xFFFF, adler1 >> 16
    a2, b2 = adler2 & 0xFFFF, adler2 >> 16
    a = (a1 + a2 - 1) % _ADLER_MOD
    b = (b1 + b2 + (a1 - 1) * length2) % _ADLER_MOD
    return (b << 16) | a


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


__all__ = [
    "BAND_BYTES",
    "DEFAULT_DEFLATER",
    "STDLIB_DEFLATER",
    "Deflater",
    "adler32_combine",
    "encode",
    "encode_many",
    "plan",
]
