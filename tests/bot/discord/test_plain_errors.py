"""Errors a member reads are sentences (issue 12, part 3).

Raw loopback servers misbehave the ways real hosts do (a connection dropped mid-image, a
3,000-character reason phrase); the member gets one short sentence of ours, never aiohttp's text,
the remote words or bytes of the response. Degenerate images are refused from their header, with
their size named, and decodes wait their turn at the gate.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from PIL import Image

from bot.core import decode
from bot.core.decode import ImageFetchError, decode_bounded, decode_image
from bot.core.fetch import fetch_image
from bot.discord.render import RenderedMessage
from bot.discord.replies import MESSAGE_LIMIT, message_text
from tests.support.probes import ConcurrencyProbe

LONG_REASON = "Teapot " + "y" * 3000


@asynccontextmanager
async def raw_server(answer: bytes) -> AsyncIterator[int]:
    """A server that sends `answer` to any request and closes the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def _refusal(answer: bytes) -> str:
    async with raw_server(answer) as port:
        with pytest.raises(ImageFetchError) as error:
            await fetch_image(f"http://127.0.0.1:{port}/a.png", allow_hosts={("127.0.0.1", port)}, timeout=5)
    return str(error.value)


async def test_a_connection_closed_mid_image_is_one_plain_sentence() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n"
    message = await _refusal(head + b"\x89PNG secret-bytes" * 10)
    assert "the server closed the connection before the image was complete" in message
    assert "secret-bytes" not in message and "Payload" not in message and "aiohttp" not in message
    assert len(message) < 200


async def test_a_remote_reason_phrase_never_reaches_the_member() -> None:
    message = await _refusal(f"HTTP/1.1 500 {LONG_REASON}\r\nContent-Length: 0\r\n\r\n".encode())
    assert message == "The image host answered 500 (internal server error)."


async def test_a_malformed_answer_is_a_sentence_not_parser_text() -> None:
    message = await _refusal(b"NOT-HTTP garbage \x00\x01\r\n\r\n")
    assert "not a valid web response" in message
    assert "garbage" not in message and "\\x00" not in message


def test_every_message_to_discord_fits_discords_limit() -> None:
    text = "x" * (MESSAGE_LIMIT + 1000)
    assert len(message_text(text)) == MESSAGE_LIMIT
    rendered = RenderedMessage(content=text)
    assert len(rendered.send_kwargs()["content"]) == MESSAGE_LIMIT
    assert len(rendered.edit_kwargs()["content"]) == MESSAGE_LIMIT


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims `width` x `height` (no pixel data is needed to read it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(("width", "height"), [(49_000_000, 1), (1, 49_000_000), (4001, 1000), (100, 401)])
def test_degenerate_images_are_refused_with_their_size_named(width: int, height: int) -> None:
    with pytest.raises(ImageFetchError, match="between 1:4 and 4:1") as error:
        decode_image(_png_header(width, height), "image/png")
    assert f"{width}x{height} pixels" in str(error.value)


def test_the_pixel_limit_is_checked_from_the_header_before_decoding() -> None:
    # 8,000 x 8,000 would be 192 MB of pixels; the header alone says so, and nothing is decoded.
    with pytest.raises(ImageFetchError, match="8000x8000 pixels") as error:
        decode_image(_png_header(8000, 8000), "image/png")
    assert "megapixels" in str(error.value)


def test_four_to_one_is_still_accepted() -> None:

    data = io.BytesIO()
    Image.new("RGB", (400, 100), (9, 9, 9)).save(data, format="PNG")
    image = decode_image(data.getvalue(), "image/png")
    assert (image.width, image.height) == (400, 100)


async def test_decodes_wait_their_turn_at_the_configured_limit() -> None:
    probe = ConcurrencyProbe(decode_image, hold_s=0.02)
    png = _png_header(1, 1)
    decode.configure_decodes(3)
    try:
        results = await asyncio.gather(
            *(decode_bounded(png, None, decode=probe) for _ in range(12)), return_exceptions=True
        )
    finally:
        decode.configure_decodes(decode.MAX_DECODES)
    assert len(results) == 12 and probe.calls == 12
    assert probe.peak == 3  # never more than the limit at once, and the limit is used
