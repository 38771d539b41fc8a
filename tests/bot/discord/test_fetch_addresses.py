"""Image prompt links are fetched only from public addresses: a real HTTP server on loopback,
real aiohttp, real Pillow.

The server (tests/support/image_server.py) is on 127.0.0.1, which the fetcher must refuse as
internal; the tests that expect a download let exactly that host and port through with
`allow_hosts`, so every other internal address (a redirect to another loopback port included) is
still refused. Names are mapped to addresses by a resolver passed in, and no traffic ever goes
anywhere but loopback (the suite's conftest refuses such connections outright). Here: the allowed
path, schemes and names, redirects, and https pinned to a vetted address with its certificate
still checked. What comes back (size, type, content, time, decoding) is test_fetch_content.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.core.decode import ImageFetchError
from bot.core.fetch import USER_AGENT, fetch_image, is_public_address
from tests.support import image_server
from tests.support.image_server import PNG, Server
from tests.support.tls import LocalCA, make_ca
from tests.support.web import serve

server = image_server.server  # the loopback image server (a fixture)


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
