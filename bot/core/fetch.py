"""Safe fetching of image prompts: URLs at the front of a prompt and Discord attachments.

A member's link makes the bot open a connection on their behalf, so the bot must not become a
way to reach what only it can reach (the cloud metadata service, the database on the LAN, the
engine's own ports). The rules, each refusal a message the member can act on:

- http and https only, no credentials in the link;
- the host is resolved here, and *every* address it resolves to must be public; the connection
  then goes to exactly those vetted addresses (a pinned resolver), so a second DNS answer cannot
  swap in an internal one (DNS rebinding); redirects are followed by hand, at most three, and each
  hop is checked the same way;
- a byte cap (Content-Length first, then counted while streaming) and an overall timeout;
- image types only, decoded with a pixel limit checked before any pixel is decoded
  (bot/core/decode.py).

Nothing here imports torch: this runs in the bot process.
"""

from __future__ import annotations

import asyncio
import http
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Collection, Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from bot.core.decode import (
    MAX_BYTES,
    ImageFetchError,
    check_content_type,
    decode_bounded,
    too_large,
)
from engine.api import ImageData

log = logging.getLogger(__name__)

MAX_REDIRECTS = 3

USER_AGENT = "ImagineBot/0.1 (Discord image bot; fetches image prompts)"
"""Some image hosts refuse the default client name; say plainly what is asking."""

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

# 100.64.0.0/10 (carrier-grade NAT) is not "private" to the ipaddress module but is internal.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64 (RFC 6052) embeds an IPv4 address in the last 32 bits; judge the embedded one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], Awaitable[Iterable[str]]]
"""Resolves (host, port) to IP address strings. Tests pass their own; the default uses getaddrinfo."""


# ---------------------------------------------------------------------------------------------
# Addresses
# ---------------------------------------------------------------------------------------------


def is_public_address(address: str) -> bool:
    """True when `address` is a globally routable unicast address (and so safe to connect to).

    Refused: loopback, private, link-local, multicast, reserved, unspecified, CGNAT, and IPv6
    forms that embed one of those IPv4 addresses (IPv4-mapped, NAT64, 6to4, Teredo).
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = [ip.ipv4_mapped, ip.sixtofour, ip.teredo[1] if ip.teredo else None]
        if ip in _NAT64:
            embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if any(v4 is not None and not is_public_address(str(v4)) for v4 in embedded):
            return False
    if ip.version == 4 and ip in _CGNAT:
        return False
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


async def _system_resolve(host: str, port: int) -> list[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class _PinnedResolver(AbstractResolver):
    """Answers aiohttp with the addresses we vetted, and nothing else.

    aiohttp would otherwise resolve the name again when it connects, and a hostile DNS server
    could answer differently the second time.
    """

    def __init__(self, host: str, addresses: list[str]) -> None:
        self._host = host
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self._host:  # pragma: no cover - aiohttp only asks for the URL's host
            raise OSError(f"unexpected host {host!r}")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in self._addresses
        ]

    async def close(self) -> None:
        return None


def _check_url(url: URL) -> None:
    if url.scheme not in ("http", "https"):
        shown = url.scheme or "no scheme"
        raise ImageFetchError(f"Only http:// and https:// image links are accepted (this one is {shown}).")
    if not url.host:
        raise ImageFetchError("That image link has no host name.")
    if url.user is not None or url.password is not None:
        raise ImageFetchError("Image links with a user name or password are not accepted.")


async def _vet_host(
    url: URL,
    *,
    resolver: Resolver,
    allow_private: bool,
    allow_hosts: Collection[tuple[str, int]],
) -> list[str]:
    """Resolve the URL's host and return its addresses, refusing if any of them is internal."""
    host = url.raw_host or ""  # what DNS sees (IDNA-encoded)
    shown = url.host or host  # what the member typed
    port = url.port or (443 if url.scheme == "https" else 80)
    literal = host.strip("[]")
    try:
        ipaddress.ip_address(literal.split("%", 1)[0])
        addresses = [literal]
    except ValueError:
        try:
            addresses = list(dict.fromkeys(await resolver(host, port)))
        except (OSError, UnicodeError) as exc:
            raise ImageFetchError(f"The image host {shown!r} could not be found.") from exc
    if not addresses:
        raise ImageFetchError(f"The image host {shown!r} could not be found.")
    for address in addresses:
        try:
            public = is_public_address(address)
        except ValueError as exc:
            raise ImageFetchError(f"The image host {shown!r} resolved to a malformed address.") from exc
        if public or allow_private or (address, port) in allow_hosts:
            continue
        log.warning("refused image fetch from %s: it resolves to internal %s", host, address)
        raise ImageFetchError(
            f"The image link {shown!r} points to an internal network address ({address}); "
            "only images on the public internet can be fetched."
        )
    return addresses


# ---------------------------------------------------------------------------------------------
# Fetching
# ---------------------------------------------------------------------------------------------


async def fetch_image(
    url: str,
    *,
    max_bytes: int = MAX_BYTES,
    timeout: float = 15.0,
    allow_private: bool = False,
    resolver: Resolver | None = None,
    allow_hosts: Collection[tuple[str, int]] = (),
    ssl_context: ssl.SSLContext | None = None,
) -> ImageData:
    """Download the image at `url` and decode it, refusing anything unsafe or not an image.

    `allow_private` lets every internal address through (an operator with a LAN image host, never
    a public bot); `allow_hosts` lets through exact `(ip, port)` pairs only, which is what the tests
    use for their loopback server so that a redirect elsewhere on loopback is still refused.
    `ssl_context` replaces the system's trust store for https (a private CA); certificates are
    always verified against the link's host name, although the connection goes to a vetted address.
    Raises `ImageFetchError` with a message meant for the member.
    """
    try:
        parsed = URL(url.strip())
    except (ValueError, TypeError) as exc:
        raise ImageFetchError("That is not a valid image link.") from exc
    try:
        async with asyncio.timeout(timeout):
            data, content_type = await _download(
                parsed,
                max_bytes=max_bytes,
                resolver=resolver or _system_resolve,
                allow_private=allow_private,
                allow_hosts=frozenset(allow_hosts),
                ssl_context=ssl_context,
            )
    except TimeoutError as exc:
        raise ImageFetchError(
            f"The image at {parsed.host} took longer than {timeout:g} s to download; "
            "try another host or attach the file instead."
        ) from exc
    return await decode_bounded(data, content_type)


async def _download(
    url: URL,
    *,
    max_bytes: int,
    resolver: Resolver,
    allow_private: bool,
    allow_hosts: frozenset[tuple[str, int]],
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[bytes, str | None]:
    for _hop in range(MAX_REDIRECTS + 1):
        _check_url(url)
        addresses = await _vet_host(
            url, resolver=resolver, allow_private=allow_private, allow_hosts=allow_hosts
        )
        connector = aiohttp.TCPConnector(
            resolver=_PinnedResolver(url.raw_host or "", addresses), use_dns_cache=False, force_close=True
        )
        try:
            async with (
                aiohttp.ClientSession(connector=connector, trust_env=False) as session,
                session.get(
                    url,
                    allow_redirects=False,
                    ssl=ssl_context if ssl_context is not None else True,
                    headers={
                        "Accept": "image/png, image/jpeg, image/webp, image/gif",
                        "User-Agent": USER_AGENT,
                    },
                ) as response,
            ):
                if response.status in _REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    if not location:
                        raise ImageFetchError("The image host sent a redirect without a target.")
                    try:
                        url = url.join(URL(location))
                    except ValueError as exc:
                        raise ImageFetchError("The image host redirected to a malformed link.") from exc
                    continue
                if response.status != 200:
                    # Our own words for the status, never the remote server's reason phrase.
                    raise ImageFetchError(f"The image host answered {_status_text(response.status)}.")
                content_type = response.headers.get("Content-Type")
                check_content_type(content_type)
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > max_bytes:
                    raise ImageFetchError(too_large(max_bytes))
                body = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise ImageFetchError(too_large(max_bytes))
                return bytes(body), content_type
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            log.info("image download from %s failed: %r", url.host, exc)  # the details, for the operator
            raise ImageFetchError(f"Could not download the image from {url.host}: {_describe(exc)}.") from exc
    raise ImageFetchError(f"The image link redirected more than {MAX_REDIRECTS} times.")


def _status_text(status: int) -> str:
    """`404 (not found)`: the standard phrase for a known status, the number alone otherwise."""
    try:
        return f"{status} ({http.HTTPStatus(status).phrase.lower()})"
    except ValueError:
        return str(status)


def _describe(exc: BaseException) -> str:
    """One short sentence for the member; aiohttp's own text (addresses, bytes, remote words)
    goes to the log only."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "its https certificate could not be verified for that name"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the secure (https) connection failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "the host refused or dropped the connection"
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | asyncio.IncompleteReadError
    ):
        return "the server closed the connection before the image was complete"
    if isinstance(exc, aiohttp.ClientResponseError | aiohttp.ClientConnectionError):
        return "the server's answer was not a valid web response"
    return "the download failed"
