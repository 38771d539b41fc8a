"""`--sref` / `--oref` through SimCord on an engine with an IP-Adapter configured (the stand-in
says so in its ModelInfo): the links are fetched like image prompts, SSRF rules included."""

from __future__ import annotations

import dataclasses

import pytest

from tests.bot.discord.conftest import private_reply
from tests.bot.discord.test_image_prompts import image_server  # noqa: F401  (the loopback picture server)
from tests.support.stand_in_engine import StandInEngine


@pytest.fixture
def engine() -> StandInEngine:
    engine = StandInEngine(textured=True)
    engine.info = dataclasses.replace(engine.info, references=True)
    return engine


async def test_a_style_reference_is_fetched_and_reaches_the_engine(world, engine, image_server):  # noqa: F811
    prompt = f"a fox in snow --sref {image_server}/fox.png --sw 250"
    result = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    [reference] = engine.requests[-1].references
    assert (reference.kind, reference.weight) == ("style", 250.0)
    assert (reference.image.width, reference.image.height) == (96, 64)
    assert job.params["references"][0]["path"].startswith("inputs/")


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("http://10.1.2.3/style.png", "internal network address (10.1.2.3)"),
        ("{server}/page.png", "PNG, JPEG, WebP and GIF"),
    ],
)
async def test_a_reference_link_that_cannot_be_used_is_refused_privately(
    world,
    engine,
    image_server,  # noqa: F811
    link,
    expected,
):
    prompt = f"a fox --oref {link.format(server=image_server)}"
    result = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    assert expected in private_reply(result)
    assert engine.requests == []
