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
- image types only (PNG, JPEG, WebP, GIF's first frame), decoded by Pillow restricted to those
  formats, with a pixel limit checked before any pixel is decoded (decompression bombs).

Nothing here imports torch: this runs in the bot process.
"""

from __future__ import annotations

import asyncio
import http
import io
import ipaddress
import logging
import socket
import ssl
import weakref
from collections.abc import Awaitable, Callable, Collection, Iterable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from PIL import Image, ImageOps, UnidentifiedImageError
from yarl import URL

from engine.api import ImageData

log = logging.getLogger(__name__)

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

MAX_REDIRECTS = 3

USER_AGENT = "ImagineBot/0.1 (Discord image bot; fetches image prompts)"
"""Some image hosts refuse the default client name; say plainly what is asking."""

ALLOWED_CONTENT_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/webp", "image/gif"})
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CHUNK = 64 * 1024

# 100.64.0.0/10 (carrier-grade NAT) is not "private" to the ipaddress module but is internal.
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
# NAT64 (RFC 6052) embeds an IPv4 address in the last 32 bits; judge the embedded one.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

Resolver = Callable[[str, int], Awaitable[Iterable[str]]]
"""Resolves (host, port) to IP address strings. Tests pass their own; the default uses getaddrinfo."""


class ImageFetchError(ValueError):
    """An image prompt was refused or could not be fetched; the message is for the member."""


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
                _check_content_type(content_type)
                length = response.headers.get("Content-Length")
                if length is not None and length.isdigit() and int(length) > max_bytes:
                    raise ImageFetchError(_too_large(max_bytes))
                body = bytearray()
                async for chunk in response.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > max_bytes:
                        raise ImageFetchError(_too_large(max_bytes))
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


def _too_large(max_bytes: int) -> str:
    limit = f"{max_bytes / (1024 * 1024):g} MB" if max_bytes >= 1024 * 1024 else f"{max_bytes} bytes"
    return f"The image is larger than {limit}; please use a smaller file."


def _check_content_type(content_type: str | None) -> None:
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
        _check_content_type(content_type)
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
        raise ImageFetchError(_too_large(max_bytes))
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
