"""A real aiohttp image server on loopback for the image fetch tests, and the images it serves.

`server` (a fixture) answers a fixed set of paths: a good PNG, redirects (one hop, an endless
loop), an HTML page, an untyped body, bodies over a size cap (declared and streamed), a corrupt
PNG, garbage, a decompression bomb, an answer that never comes, a 404. It records the Host and
User-Agent headers and the path of every request it sees.
"""

from __future__ import annotations

import asyncio
import io
import struct
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from PIL import Image

from tests.support.web import serve


def png(width: int = 48, height: int = 32, color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    image = Image.new("RGB", (width, height), color)
    image.putpixel((0, 0), (1, 2, 3))  # a marker pixel: the decode must keep it exactly
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def bomb_png(side: int = 20_000) -> bytes:
    """A real, valid 1-bit PNG of side x side pixels: ~50 KB that would decode to 400 million."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    compressor = zlib.compressobj(9)
    row = b"\0" * (1 + (side + 7) // 8)  # filter byte + packed bits
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


PNG = png()


@dataclass
class Server:
    """What the loopback image server saw."""

    port: int
    hosts: list[str] = field(default_factory=list)  # the Host header of every request
    agents: list[str] = field(default_factory=list)  # the User-Agent of every request
    paths: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    @property
    def allow(self) -> set[tuple[str, int]]:
        return {("127.0.0.1", self.port)}


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(port=0)

    async def record(request: web.Request) -> None:
        state.hosts.append(request.headers.get("Host", ""))
        state.agents.append(request.headers.get("User-Agent", ""))
        state.paths.append(request.path)

    async def cat(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=PNG, content_type="image/png")

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound(request.query["to"])

    async def loop(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/loop")

    async def html(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(text="<html>not an image</html>", content_type="text/html")

    async def untyped(request: web.Request) -> web.Response:
        await record(request)
        response = web.Response(body=PNG)
        response.headers["Content-Type"] = ""
        return response

    async def big(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"\x89PNG" + b"\0" * 5000, content_type="image/png")

    async def big_streamed(request: web.Request) -> web.StreamResponse:
        await record(request)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(10):
            await response.write(b"\0" * 1000)
        await response.write_eof()
        return response

    async def corrupt(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=PNG[: len(PNG) // 2], content_type="image/png")

    async def garbage(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=b"GIF89a? not really" * 10, content_type="image/gif")

    async def bomb(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(body=bomb_png(), content_type="image/png")

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        await state.release.wait()
        return web.Response(body=PNG, content_type="image/png")

    async def missing(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPNotFound()

    app = web.Application()
    for path, handler in {
        "/cat.png": cat,
        "/redirect": redirect,
        "/loop": loop,
        "/page.html": html,
        "/untyped": untyped,
        "/big.png": big,
        "/big-streamed.png": big_streamed,
        "/corrupt.png": corrupt,
        "/garbage.gif": garbage,
        "/bomb.png": bomb,
        "/slow.png": slow,
        "/missing.png": missing,
    }.items():
        app.router.add_get(path, handler)
    async with serve(app) as port:
        state.port = port
        try:
            yield state
        finally:
            state.release.set()
