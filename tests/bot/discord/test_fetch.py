"""Image prompts are fetched safely: a real HTTP server on loopback, real aiohttp, real Pillow.

The server is on 127.0.0.1, which the fetcher must refuse as internal; the tests that expect a
download let exactly that host and port through with `allow_hosts`, so every other internal
address (a redirect to another loopback port included) is still refused. Names are mapped to
addresses by a resolver passed in, and no traffic ever goes anywhere but loopback (the suite's
conftest refuses such connections outright).
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

from bot.core.decode import ImageFetchError, decode_image, load_attachment_bytes
from bot.core.fetch import USER_AGENT, fetch_image, is_public_address
from tests.support.tls import LocalCA, make_ca
from tests.support.web import serve


def _png(width: int = 48, height: int = 32, color: tuple[int, int, int] = (200, 30, 90)) -> bytes:
    image = Image.new("RGB", (width, height), color)
    image.putpixel((0, 0), (1, 2, 3))  # a marker pixel: the decode must keep it exactly
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _bomb_png(side: int = 20_000) -> bytes:
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


PNG = _png()


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
        return web.Response(body=_bomb_png(), content_type="image/png")

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


def _resolver(table: dict[str, list[str]], calls: list[str] | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


# --- the allowed path --------------------------------------------------------------------------


async def test_an_allowed_host_gives_the_decoded_image(server: Server) -> None:
    image = await fetch_image(server.url("/cat.png"), allow_hosts=server.allow)
    assert (image.width, image.height) == (48, 32)
    pil = image.to_pil()
    assert pil.getpixel((0, 0)) == (1, 2, 3)
    assert pil.getpixel((10, 10)) == (200, 30, 90)


async def test_the_same_server_without_the_allowance_is_refused_as_internal(server: Server) -> None:
    with pytest.raises(ImageFetchError, match=r"internal network address \(127\.0\.0\.1\)"):
        await fetch_image(server.url("/cat.png"))
    assert server.paths == []  # refused before connecting


async def test_allow_private_lets_an_operator_fetch_from_their_network(server: Server) -> None:
    image = await fetch_image(server.url("/cat.png"), allow_private=True)
    assert (image.width, image.height) == (48, 32)


async def test_a_name_is_resolved_once_and_the_connection_pinned_to_the_vetted_address(
    server: Server,
) -> None:
    calls: list[str] = []
    resolver = _resolver({"images.example": ["127.0.0.1"]}, calls)
    image = await fetch_image(
        server.url("/cat.png", "images.example"), resolver=resolver, allow_hosts=server.allow
    )
    assert image.width == 48
    # The name cannot be resolved by the system, so the connection must have used our answer,
    # and asked only once: no second lookup a rebinding DNS server could answer differently.
    assert calls == ["images.example"]
    assert server.hosts == [f"images.example:{server.port}"]
    assert server.agents == [USER_AGENT]


# --- schemes and names -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/cat.png",
        "file:///etc/passwd",
        "data:image/png;base64,AAAA",
        "gopher://x/1",
        "cat.png",
    ],
)
async def test_only_http_and_https_are_accepted(url: str) -> None:
    with pytest.raises(ImageFetchError, match=r"Only http:// and https://"):
        await fetch_image(url, allow_private=True)


async def test_credentials_in_the_link_are_refused(server: Server) -> None:
    with pytest.raises(ImageFetchError, match="user name or password"):
        await fetch_image(f"http://me:secret@127.0.0.1:{server.port}/cat.png", allow_hosts=server.allow)
    assert server.paths == []


@pytest.mark.parametrize(
    "addresses",
    [
        ["10.0.0.5"],
        ["::1"],
        ["169.254.169.254"],
        ["100.64.0.7"],
        ["93.184.216.34", "10.0.0.5"],
        ["::ffff:10.0.0.1"],
    ],
    ids=["private", "ipv6-loopback", "metadata", "cgnat", "one-of-several", "ipv4-mapped"],
)
async def test_names_that_resolve_to_internal_addresses_are_refused(addresses: list[str]) -> None:
    resolver = _resolver({"evil.example": addresses})
    with pytest.raises(ImageFetchError, match=r"internal network address") as refused:
        await fetch_image("https://evil.example/cat.png", resolver=resolver)
    assert any(address in str(refused.value) for address in addresses)


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "[::1]", "169.254.169.254", "10.1.2.3", "0.0.0.0", "[fe80::1]"]
)
async def test_internal_address_literals_are_refused(host: str) -> None:
    with pytest.raises(ImageFetchError, match="internal network address"):
        await fetch_image(f"http://{host}/cat.png")


@pytest.mark.parametrize("host", ["localhost", "2130706433", "0x7f.1", "127.1"])
async def test_the_system_resolver_s_answer_is_what_gets_checked(host: str) -> None:
    # Spellings of 127.0.0.1 that no string check catches; getaddrinfo answers them locally.
    with pytest.raises(ImageFetchError, match=r"internal network address \((127\.0\.0\.1|::1)\)"):
        await fetch_image(f"http://{host}/cat.png")


async def test_an_international_name_is_shown_as_typed() -> None:
    calls: list[str] = []
    resolver = _resolver({"xn--r8jz45g.jp": ["10.0.0.9"]}, calls)
    with pytest.raises(ImageFetchError, match=r"'例え\.jp' points to an internal network address"):
        await fetch_image("https://例え.jp/cat.png", resolver=resolver)
    assert calls == ["xn--r8jz45g.jp"]  # DNS sees the IDNA form


async def test_an_unknown_host_says_so() -> None:
    with pytest.raises(ImageFetchError, match=r"'nowhere\.example' could not be found"):
        await fetch_image("https://nowhere.example/cat.png", resolver=_resolver({}))


def test_public_addresses_are_told_apart_from_internal_ones() -> None:
    assert is_public_address("93.184.216.34")
    assert is_public_address("2606:4700::1111")
    for internal in (
        "127.0.0.2",
        "192.168.1.1",
        "172.16.0.1",
        "224.0.0.1",
        "240.0.0.1",
        "fd00::1",
        "64:ff9b::a00:1",
    ):
        assert not is_public_address(internal), internal


# --- redirects ---------------------------------------------------------------------------------


async def test_a_redirect_on_the_same_allowed_server_is_followed(server: Server) -> None:
    image = await fetch_image(server.url("/redirect?to=/cat.png"), allow_hosts=server.allow)
    assert image.width == 48
    assert server.paths == ["/redirect", "/cat.png"]


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{other}/cat.png",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/cat.png",
    ],
    ids=["other-loopback-port", "metadata", "private"],
)
async def test_a_redirect_to_an_internal_address_is_refused(server: Server, target: str) -> None:
    target = target.format(other=server.port + 1 if server.port < 65535 else server.port - 1)
    with pytest.raises(ImageFetchError, match="internal network address"):
        await fetch_image(server.url(f"/redirect?to={target}"), allow_hosts=server.allow)
    assert server.paths == ["/redirect"]  # the first hop happened, the second never did


async def test_a_redirect_to_another_scheme_is_refused(server: Server) -> None:
    with pytest.raises(ImageFetchError, match="Only http://"):
        await fetch_image(server.url("/redirect?to=file:///etc/passwd"), allow_hosts=server.allow)


async def test_a_redirect_to_a_name_is_checked_after_resolution(server: Server) -> None:
    resolver = _resolver({"metadata.example": ["169.254.169.254"]})
    with pytest.raises(ImageFetchError, match=r"169\.254\.169\.254"):
        await fetch_image(
            server.url("/redirect?to=http://metadata.example/"), resolver=resolver, allow_hosts=server.allow
        )


async def test_endless_redirects_stop_after_three(server: Server) -> None:
    with pytest.raises(ImageFetchError, match="redirected more than 3 times"):
        await fetch_image(server.url("/loop"), allow_hosts=server.allow)
    assert server.paths == ["/loop"] * 4


# --- size, type, content, time -----------------------------------------------------------------


async def test_a_body_over_the_cap_is_refused_from_its_content_length(server: Server) -> None:
    with pytest.raises(ImageFetchError, match=r"larger than 1000 bytes"):
        await fetch_image(server.url("/big.png"), allow_hosts=server.allow, max_bytes=1000)


async def test_a_streamed_body_over_the_cap_is_refused_while_counting(server: Server) -> None:
    with pytest.raises(ImageFetchError, match=r"larger than 4000 bytes"):
        await fetch_image(server.url("/big-streamed.png"), allow_hosts=server.allow, max_bytes=4000)


@pytest.mark.parametrize(
    ("path", "shown"), [("/page.html", "text/html"), ("/untyped", "did not say what it is")]
)
async def test_something_that_is_not_an_image_type_is_refused(server: Server, path: str, shown: str) -> None:
    with pytest.raises(ImageFetchError, match=shown):
        await fetch_image(server.url(path), allow_hosts=server.allow)


async def test_a_corrupt_image_is_refused(server: Server) -> None:
    with pytest.raises(ImageFetchError, match="damaged or incomplete"):
        await fetch_image(server.url("/corrupt.png"), allow_hosts=server.allow)
    with pytest.raises(ImageFetchError, match="not a PNG, JPEG, WebP or GIF"):
        await fetch_image(server.url("/garbage.gif"), allow_hosts=server.allow)


async def test_a_decompression_bomb_is_refused_without_decoding_it(server: Server) -> None:
    with pytest.raises(ImageFetchError, match=r"more than the 50 megapixels"):
        await fetch_image(server.url("/bomb.png"), allow_hosts=server.allow)


async def test_a_server_that_never_answers_times_out(server: Server) -> None:
    with pytest.raises(ImageFetchError, match=r"took longer than 0\.3 s"):
        await fetch_image(server.url("/slow.png"), allow_hosts=server.allow, timeout=0.3)


async def test_an_error_status_is_reported(server: Server) -> None:
    with pytest.raises(ImageFetchError, match=r"answered 404 \(not found\)"):
        await fetch_image(server.url("/missing.png"), allow_hosts=server.allow)


async def test_a_closed_port_is_reported(server: Server) -> None:
    other = server.port + 1 if server.port < 65535 else server.port - 1
    with pytest.raises(ImageFetchError, match="refused or dropped the connection"):
        await fetch_image(f"http://127.0.0.1:{other}/cat.png", allow_hosts={("127.0.0.1", other)}, timeout=5)


# --- decoding (attachments use this directly) --------------------------------------------------


def test_decoding_keeps_pixels_and_size() -> None:
    image = decode_image(PNG, "image/png")
    assert (image.width, image.height) == (48, 32)
    assert image.to_pil().getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize(("fmt", "content_type"), [("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_jpeg_and_webp_decode(fmt: str, content_type: str) -> None:
    data = _encode(Image.new("RGB", (40, 24), (0, 128, 255)), fmt, quality=95)
    image = decode_image(data, content_type)
    assert (image.width, image.height) == (40, 24)
    red, green, blue = image.to_pil().getpixel((20, 12))
    assert red < 20 and abs(green - 128) < 20 and blue > 230


def test_an_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (16, 16), color) for color in ((255, 0, 0), (0, 0, 255))]
    data = _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    pixel = decode_image(data, "image/gif").to_pil().getpixel((8, 8))
    assert pixel[0] > 200 and pixel[2] < 50


def test_a_transparent_png_becomes_rgb() -> None:
    data = _encode(Image.new("RGBA", (8, 8), (10, 20, 30, 0)), "PNG")
    image = decode_image(data)
    assert len(image.rgb) == 8 * 8 * 3


def test_a_phone_photo_is_turned_upright() -> None:
    photo = Image.new("RGB", (60, 20), (90, 90, 90))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    image = decode_image(_encode(photo, "JPEG", exif=exif.tobytes()), "image/jpeg")
    assert (image.width, image.height) == (20, 60)


def test_a_large_image_is_scaled_to_fit_the_largest_side() -> None:
    image = decode_image(_encode(Image.new("RGB", (3000, 1000)), "PNG"))
    assert (image.width, image.height) == (2048, 683)


def test_formats_other_than_the_four_are_refused_even_if_pillow_reads_them() -> None:
    with pytest.raises(ImageFetchError, match="not a PNG, JPEG, WebP or GIF"):
        decode_image(_encode(Image.new("RGB", (8, 8)), "BMP"))


def test_an_attachment_with_a_non_image_type_is_refused() -> None:
    with pytest.raises(ImageFetchError, match="application/pdf"):
        decode_image(PNG, "application/pdf")


def test_a_bomb_and_an_empty_file_are_refused() -> None:
    with pytest.raises(ImageFetchError, match="more than the 50 megapixels"):
        decode_image(_bomb_png())
    # Under Pillow's own limit (89 MP) but over ours, our header check refuses and names the size.
    with pytest.raises(ImageFetchError, match=r"is 8000x8000 pixels, more than the 50 megapixels"):
        decode_image(_bomb_png(8000))
    with pytest.raises(ImageFetchError, match="empty"):
        decode_image(b"")


def test_an_attachment_is_capped_and_decoded_like_a_download() -> None:
    image = load_attachment_bytes(PNG, "image/png")
    assert (image.width, image.height) == (48, 32)
    with pytest.raises(ImageFetchError, match="larger than 100 bytes"):
        load_attachment_bytes(PNG, "image/png", max_bytes=100)
    with pytest.raises(ImageFetchError, match="text/plain, not an image"):
        load_attachment_bytes(PNG, "text/plain")


# --- https: the connection is pinned, the certificate is still checked against the name ---------


@pytest.fixture
async def tls_server(tmp_path) -> AsyncIterator[tuple[int, LocalCA]]:
    ca = make_ca(tmp_path / "tls", "images.example")

    async def cat(request: web.Request) -> web.Response:
        return web.Response(body=PNG, content_type="image/png")

    app = web.Application()
    app.router.add_get("/cat.png", cat)
    async with serve(app, ssl_context=ca.server_context()) as port:
        yield port, ca


async def test_https_to_a_pinned_address_verifies_the_certificate_for_the_name(tls_server) -> None:
    port, ca = tls_server
    resolver = _resolver({"images.example": ["127.0.0.1"]})
    image = await fetch_image(
        f"https://images.example:{port}/cat.png",
        resolver=resolver,
        allow_hosts={("127.0.0.1", port)},
        ssl_context=ca.client_context(),
    )
    assert (image.width, image.height) == (48, 32)


@pytest.mark.parametrize("trusted", [True, False], ids=["wrong-name", "untrusted-ca"])
async def test_https_with_a_certificate_that_does_not_verify_is_refused(tls_server, trusted: bool) -> None:
    port, ca = tls_server
    name = "other.example" if trusted else "images.example"
    with pytest.raises(ImageFetchError, match="certificate could not be verified"):
        await fetch_image(
            f"https://{name}:{port}/cat.png",
            resolver=_resolver({name: ["127.0.0.1"]}),
            allow_hosts={("127.0.0.1", port)},
            ssl_context=ca.client_context() if trusted else None,
        )
