"""Shared pieces of the moderation SimCord tests (no tests here).

Jobs are written through the real Store (rows and PNG files) and posted through the bot's own
messenger, so a moderation test does not depend on the engine or on `/imagine`'s timing.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import moderation
from bot.discord import render
from tests.support.stand_in_engine import grid_of
from tests.support.stand_in_engine import textured as solid


@pytest.fixture
def mod_clock(world, monkeypatch: pytest.MonkeyPatch):
    """Ban ends follow SimCord's virtual time: the moderation clock starts at the real now (the
    store refuses expiries in the real past) and moves with `env.advance_time`."""
    start, virtual_start = datetime.now(UTC), world.env.now()
    monkeypatch.setattr(moderation, "clock", lambda: start + (world.env.now() - virtual_start))
    return moderation.clock


async def make_job(
    world,
    member,
    prompt: str = "a lighthouse at dusk",
    *,
    parent=None,
    kind: str = "imagine",
    index: int | None = None,
    status: str = "done",
    post: bool = True,
    seed: int = 1,
):
    """A finished job of `member` in the world's channel (a grid for grid kinds), shown in a
    message the bot posted, as the bot's own flow would leave it."""
    store = world.services.store
    job = await store.create_job(
        kind=kind,
        status="running",
        user_id=member.id,
        user_name=member.name,
        guild_id=world.guild.id,
        channel_id=world.channel.id,
        raw_prompt=prompt,
        prompt=prompt,
        model="stand-in",
        width=32,
        height=32,
        seed=seed,
        parent_id=parent.id if parent is not None else None,
        parent_index=index,
    )
    if status == "done":
        single = kind in ("upscale", "upscale_subtle", "upscale_creative")
        images = [solid(32, 32, seed + i) for i in range(1 if single else 4)]
        seeds = [seed + i for i in range(len(images))]
        job = await store.complete_job(job.id, images, seeds, grid=None if single else grid_of(images))
    else:
        job = await store.fail_job(job.id, "engine fell over", status=status)
    if post:
        message = await world.bot.messenger.send_to_channel(
            world.channel.id, await render.job_message(job, world.services)
        )
        job = await store.add_message(job.id, message.id)
        await world.env.settle()
    return await store.get_job(job.id)


def content_of(world, message_id: int) -> str:
    return world.message(message_id).content
