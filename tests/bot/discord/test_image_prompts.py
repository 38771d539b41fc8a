"""Image prompts through `/imagine`: an attachment, or a link at the front of the prompt.

The allowed link is served by a small HTTP server on loopback that the test allow-lists by its
exact address and port; every other internal address must be refused with a clear message.
"""

from __future__ import annotations

import io

import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from tests.bot.discord.conftest import private_reply
from tests.support.web import serve


def png(width: int = 96, height: int = 64) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 90)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest_asyncio.fixture
async def image_server(allowed_hosts):
    """http://127.0.0.1:PORT/ with a PNG, a page pretending to be an image, a huge file, a redirect."""

    async def picture(request: web.Request) -> web.Response:
        return web.Response(body=png(), content_type="image/png")

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>not an image</html>", content_type="text/html")

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "image/png", "Content-Length": str(11 * 2**20)}
        )
        await response.prepare(request)
        return response

    async def to_internal(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://10.1.2.3/secret.png")

    app = web.Application()
    app.router.add_get("/fox.png", picture)
    app.router.add_get("/page.png", page)
    app.router.add_get("/huge.png", huge)
    app.router.add_get("/hop.png", to_internal)
    async with serve(app) as port:
        allowed_hosts.add(("127.0.0.1", port))
        yield f"http://127.0.0.1:{port}"


async def test_an_attached_image_starts_the_job(world, engine):
    result = await world.alice.slash(
        world.channel, "imagine", prompt="make it a watercolour", image=("fox.png", png())
    )
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    init = engine.requests[-1].init_image
    assert init is not None and (init.width, init.height) == (96, 64)


async def test_an_image_link_at_the_front_is_fetched(world, engine, image_server):
    result = await world.alice.slash(
        world.channel, "imagine", prompt=f"{image_server}/fox.png a fox in the style of the picture"
    )
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    assert job.prompt.startswith(f"{image_server}/fox.png")
    init = engine.requests[-1].init_image
    assert init is not None and (init.width, init.height) == (96, 64)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/page.png", "PNG, JPEG, WebP and GIF"),
        ("/huge.png", "MB"),
        ("/hop.png", "internal network address (10.1.2.3)"),
    ],
)
async def test_bad_links_on_the_allowed_server_are_refused(world, image_server, path, expected):
    result = await world.alice.slash(world.channel, "imagine", prompt=f"{image_server}{path} a fox")
    assert expected in private_reply(result)
    assert await world.services.store.user_jobs(world.alice.id) == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/cat.png",  # loopback, not the allow-listed server
        "http://10.0.0.7/cat.png",
        "http://169.254.169.254/latest/meta.png",  # cloud metadata
        "http://[::1]:8080/cat.png",
        "http://192.168.1.20/cat.png",
    ],
)
async def test_internal_addresses_are_refused(world, url):
    result = await world.alice.slash(world.channel, "imagine", prompt=f"{url} a cat")
    assert "internal network address" in private_reply(result)
    assert await world.services.store.user_jobs(world.alice.id) == []


async def test_an_attachment_that_is_not_an_image_is_refused(world):
    result = await world.alice.slash(
        world.channel, "imagine", prompt="a cat", image=("notes.png", b"just some text, not a picture")
    )
    assert "image" in private_reply(result).lower()
    assert await world.services.store.user_jobs(world.alice.id) == []
