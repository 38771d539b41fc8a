"""What an image fetch gives back is checked before it is used: size, type, content, time; and
the decoding that attachments use directly.

A real HTTP server on loopback (tests/support/image_server.py), real aiohttp, real Pillow. The
server is on 127.0.0.1, so every download here lets exactly its host and port through with
`allow_hosts`; the address checks themselves are test_fetch_addresses.py.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.core.decode import ImageFetchError, decode_image, load_attachment_bytes
from bot.core.fetch import fetch_image
from tests.support import image_server
from tests.support.image_server import PNG, Server
from tests.support.image_server import bomb_png as _bomb_png

server = image_server.server  # the loopback image server (a fixture)


def _encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


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
