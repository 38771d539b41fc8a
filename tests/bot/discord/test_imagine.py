"""`/imagine` through SimCord: deferral, the job message, the grid and its buttons, refusals."""

from __future__ import annotations

from tests.bot.discord.conftest import attachment_image, callbacks, labels

GRID_LABELS = [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]


async def test_imagine_posts_a_grid_with_buttons(world):
    result = await world.alice.slash(
        world.channel, "imagine", prompt="a lighthouse at dusk --ar 3:2 --seed 7"
    )

    assert callbacks(world.env) == [5]  # deferred at once (DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE)
    assert not result.ephemeral
    job = await world.job_of(result.response.id)
    assert job is not None and job.user_id == world.alice.id
    await world.settled(job.id)

    message = world.message(result.response.id)
    assert "**a lighthouse at dusk --ar 3:2 --seed 7**" in message.content
    assert f"<@{world.alice.id}>" in message.content
    assert job.id in message.content and "stand-in" in message.content
    assert labels(message) == GRID_LABELS
    [attachment] = message.attachments
    assert attachment.filename.endswith(".png")
    picture = await attachment_image(attachment)
    job = await world.services.store.get_job(job.id)
    assert picture.size == (job.width * 2, job.height * 2)
    assert job.width > job.height  # --ar 3:2 reached the engine


async def test_bad_prompt_is_refused_privately_with_the_parsers_words(world):
    result = await world.alice.slash(world.channel, "imagine", prompt="a cat --chaos 500")

    assert result.ephemeral
    assert "--chaos" in result.response.content and "100" in result.response.content
    assert await world.services.store.user_jobs(world.alice.id) == []
