"""Text chunks in the store's PNGs: how each picture was made, readable by any tool.

A stored picture carries its prompt, seed, model and parameters (`Store.complete_job` takes
one mapping per picture). Values go in `tEXt` chunks when Latin-1 can hold them, as most
readers expect, and in uncompressed UTF-8 `iTXt` chunks otherwise. The chunks sit right
after `IHDR`; a picture stored again under another job (U1-U4) loses its old ones first, so a
file never names two jobs.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping

from storage.errors import InvalidInputError
from storage.files import EncodedImage
from storage.png import SIGNATURE

TEXT_CHUNKS = frozenset({b"tEXt", b"iTXt", b"zTXt"})
_IHDR_END = len(SIGNATURE) + 8 + 13 + 4  # signature, then IHDR: length, type, 13 bytes, CRC


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def text_chunk(key: str, value: str) -> bytes:
    """One text chunk; `key` is a PNG keyword (1-79 Latin-1 characters, no NUL)."""
    try:
        keyword = key.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidInputError(f"PNG text key {key!r} must be Latin-1") from None
    if not 0 < len(keyword) < 80 or b"\0" in keyword:
        raise InvalidInputError(f"PNG text key {key!r} must be 1-79 characters without NUL")
    try:
        return _chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:  # uncompressed, no language tag, no translated keyword
        return _chunk(b"iTXt", keyword + b"\0\0\0\0\0" + value.encode("utf-8"))


def _chunks(data: bytes, start: int) -> Iterator[tuple[bytes, bytes]]:
    """(type, whole chunk) for each chunk from `start` on."""
    position = start
    while position + 12 <= len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        end = position + 12 + length
        yield data[position + 4 : position + 8], data[position:end]
        position = end


def with_text(image: EncodedImage, entries: Mapping[str, str]) -> EncodedImage:
    """The picture with `entries` as its text chunks (any it had are dropped)."""
    added = tuple(text_chunk(key, value) for key, value in entries.items())
    pieces = image.pieces
    fresh = len(pieces) > 2 and pieces[0] == SIGNATURE and pieces[1][4:8] == b"IHDR"
    if fresh and not any(piece[4:8] in TEXT_CHUNKS for piece in pieces[2:]):
        # Freshly encoded: the pieces are whole chunks, so the text slots in without a copy.
        return EncodedImage((pieces[0], pieces[1], *added, *pieces[2:]), image.width, image.height)
    data = b"".join(pieces)
    if data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise InvalidInputError("only a PNG can carry PNG text")
    kept = tuple(chunk for kind, chunk in _chunks(data, _IHDR_END) if kind not in TEXT_CHUNKS)
    return EncodedImage((data[:_IHDR_END], *added, *kept), image.width, image.height)


__all__ = ["TEXT_CHUNKS", "text_chunk", "with_text"]
