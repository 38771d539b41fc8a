"""`/web` and the Vary (Region) button: private one-time sign-in links to Imagine Web (SimCord)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.core.jobs import Requester
from bot.core.web_access import redeem_link
from bot.discord.web_links import NOT_SET_UP
from bot.settings import Settings
from tests.bot.discord.conftest import labels
from tests.bot.discord.test_buttons import click, imagine

SITE = "https://imagine.example"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, model="stand-in", device="cpu", engine="inprocess", web_url=SITE)


def link_of(result) -> str:
    assert result.ephemeral, result
    [row] = result.response.components  # raw component payloads
    [button] = row["components"]
    assert button["url"].startswith(SITE + "/signin/")
    return button["url"]


async def test_web_answers_a_private_link_that_signs_the_member_in_once(world):
    result = await world.alice.slash(world.channel, "web")
    assert "works once, within 15 minutes" in result.response.content
    secret = link_of(result).rsplit("/", 1)[1]
    _session, who, target = await redeem_link(world.services.store, secret)
    assert (who.user_id, who.guild_id, who.moderator, target) == (world.alice.id, world.guild.id, False, None)
    with pytest.raises(PermissionError, match="already used"):
        await redeem_link(world.services.store, secret)


async def test_a_moderator_gets_moderator_rights_on_this_guild(world):
    result = await world.mod.slash(world.channel, "web")
    assert "with moderator rights" in result.response.content
    _, who, _ = await redeem_link(world.services.store, link_of(result).rsplit("/", 1)[1])
    assert (who.user_id, who.guild_id, who.moderator) == (world.mod.id, world.guild.id, True)


async def test_an_upscale_offers_vary_region_which_links_to_the_editor(world):
    grid, _ = await imagine(world, world.alice, "a red fox in snow --ar 3:2 --seed 11")
    single, job = await click(world, world.alice, grid, "U2")
    assert "Vary (Region)" in labels(single)[0]
    assert "Vary (Region)" not in [label for row in labels(grid) for label in row]
    result = await world.bob.click(single, label="Vary (Region)")
    _, who, target = await redeem_link(world.services.store, link_of(result).rsplit("/", 1)[1])
    assert who.user_id == world.bob.id and target == f"/region/{job.id}"


async def test_without_imagine_web_there_is_no_link_and_no_region_button(world, settings):
    world.services.settings = Settings(
        data_dir=settings.data_dir, model="stand-in", device="cpu", engine="inprocess"
    )
    result = await world.alice.slash(world.channel, "web")
    assert result.ephemeral and result.response.content == NOT_SET_UP
    grid, _ = await imagine(world, world.alice, "a red fox in snow --ar 3:2 --seed 11")
    single, _ = await click(world, world.alice, grid, "U2")
    assert "Vary (Region)" not in [label for row in labels(single) for label in row]


async def test_a_job_made_on_the_web_goes_back_to_discord_with_show(world):
    grid, _ = await imagine(world, world.alice, "a red fox in snow --ar 3:2 --seed 11")
    _, job = await click(world, world.alice, grid, "U2")
    w, h = job.cells[0].width, job.cells[0].height
    plane = Image.new("L", (w, h), 0)
    plane.paste(255, (0, 0, w // 2, h // 2))
    mask = io.BytesIO()
    plane.save(mask, format="PNG")
    web_member = Requester(world.alice.id, "alice", guild_id=world.guild.id, source="web")
    region = await world.services.jobs.region(web_member, job.id, mask.getvalue(), "a blue fox")
    await world.quiet()
    shown = await world.alice.slash(world.channel, "show", job_id=region.id)
    message = world.message(shown.response.id)
    assert region.id in message.content and len(message.attachments) == 1
    assert labels(message)[0] == ["U1", "U2", "U3", "U4", "🔄"]  # a region job is a grid of four
