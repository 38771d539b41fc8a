"""/blend, /shorten and /describe through SimCord: the real command tree, views and store, with
the stand-in engine (its /shorten scores a word by its length; /describe names the size)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.settings import Settings
from storage.queries import HistoryQuery
from tests.bot.discord.conftest import attachment_image, labels, make_bot, private_reply


def png(width: int = 48, height: int = 32, colour=(200, 40, 90)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    # A captioner is "configured" (the stand-in engine answers /describe itself).
    return Settings(data_dir=data_dir, model="stand-in", device="cpu", engine="inprocess", captioner="blip")


async def shorten(world, member, prompt):
    result = await member.slash(world.channel, "shorten", prompt=prompt)
    await world.env.settle()
    return result, world.message(result.response.id)


async def test_shorten_shows_the_ranking_and_five_prompt_buttons(world):
    result, answer = await shorten(
        world, world.alice, "a gigantic lighthouse on the rocky island at dusk --ar 16:9"
    )
    assert not result.ephemeral
    assert "**lighthouse** 1.0000" in answer.content and "Shorter prompts:" in answer.content
    assert "**5.** gigantic lighthouse --ar 16:9" in answer.content
    assert labels(answer) == [["1", "2", "3", "4", "5"]]
    job = await world.job_of(answer.id)
    assert job.kind == "shorten" and job.status == "done"


async def test_a_prompt_button_imagines_that_prompt_and_works_after_a_restart(world, services, allowed_hosts):
    _, answer = await shorten(world, world.alice, "a gigantic lighthouse on the rocky island at dusk")
    answer_job = await world.job_of(answer.id)

    await world.env.restart_bot(make_bot(services, allowed_hosts))

    result = await world.bob.click(world.message(answer.id), label="5")
    assert not result.ephemeral
    grid = world.channel.last_message
    job = await world.job_of(grid.id)
    await world.settled(job.id)
    assert (
        job.prompt == "gigantic lighthouse" and job.parent_id == answer_job.id and job.user_id == world.bob.id
    )
    assert labels(world.message(grid.id))[0][:4] == ["U1", "U2", "U3", "U4"]


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a {red, blue} cat", "permutations"),
        ("a cat --chaos 500", "chaos"),
        ("https://example.com/cat.png a cat", "image link"),
    ],
)
async def test_shorten_refuses_what_it_cannot_read_privately(world, prompt, expected):
    result = await world.alice.slash(world.channel, "shorten", prompt=prompt)
    assert expected in private_reply(result)
    assert (await world.services.store.history(HistoryQuery())).jobs == []


async def test_describe_shows_the_image_and_four_prompt_buttons(world):
    result = await world.alice.slash(world.channel, "describe", image=("cat.png", png(80, 60)))
    answer = world.message(result.response.id)
    assert "**1.** picture 1 of 80x60 pixels" in answer.content and "**4.**" in answer.content
    assert labels(answer) == [["1", "2", "3", "4"]]
    assert (await attachment_image(answer.attachments[0])).size == (80, 60)
    await world.alice.click(answer, label="3")
    grid = world.channel.last_message
    job = await world.job_of(grid.id)
    await world.settled(job.id)
    assert job.prompt == "picture 3 of 80x60 pixels"


async def test_describe_refuses_a_file_that_is_not_an_image(world):
    result = await world.alice.slash(world.channel, "describe", image=("notes.txt", b"hello"))
    assert "PNG, JPEG, WebP and GIF" in private_reply(result)


async def test_blend_makes_a_grid_of_the_asked_shape_with_the_usual_buttons(world, engine):
    result = await world.alice.slash(
        world.channel,
        "blend",
        image1=("a.png", png(48, 32)),
        image2=("b.png", png(32, 48, (10, 200, 30))),
        image3=("c.png", png(40, 40, (10, 20, 230))),
        dimensions="landscape",
        prompt="at night",
    )
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    grid = world.message(result.response.id)
    assert labels(grid) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    assert job.kind == "blend" and job.width > job.height
    assert len(engine.requests[-1].sources) == 3
    await world.alice.click(grid, label="🔄")
    reroll = await world.job_of(world.channel.last_message.id)
    await world.settled(reroll.id)
    assert reroll.kind == "blend" and reroll.parent_id == job.id


@pytest.mark.parametrize(
    ("second", "expected"),
    [
        (b"not a picture", "Image 2: "),
        (png(4000, 40), "Image 2: "),  # far past the aspect and side limits of an image prompt
    ],
)
async def test_blend_refuses_a_bad_image_by_its_number_and_stores_nothing(world, second, expected):
    result = await world.alice.slash(
        world.channel, "blend", image1=("a.png", png()), image2=("b.png", second)
    )
    assert private_reply(result).startswith(expected)
    assert (await world.services.store.history(HistoryQuery())).jobs == []


async def test_imagine_with_a_style_reference_is_refused_privately(world, engine):
    result = await world.alice.slash(
        world.channel, "imagine", prompt="a cat --sref https://example.com/s.png"
    )
    assert "IP-Adapter" in private_reply(result)
    assert engine.requests == []
