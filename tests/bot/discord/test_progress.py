"""A job's life in its message: queue position, throttled progress, Cancel, the 15-minute
fallback, and buttons that still work after a restart."""

from __future__ import annotations

import asyncio

from bot.core.dispatcher import Limits
from bot.core.services import Services
from bot.discord.render import HIDDEN_NOTICE
from storage.store import Store
from tests.bot.discord.conftest import labels, make_bot, private_reply, result_reply


def original_edits(env, interaction_result) -> list[str]:
    """The contents the bot put on the /imagine message through its interaction token."""
    token = f"simcord_interaction_{interaction_result._interaction.id}"
    return [
        entry.json.get("content", "")
        for entry in env.http_requests
        if entry.method == "PATCH" and token in entry.path and entry.path.endswith("@original")
    ]


async def test_waiting_message_shows_the_queue_position_and_info_lists_it(world, held):
    first = await world.alice.slash(world.channel, "imagine", prompt="a quiet harbour")
    second = await world.bob.slash(world.channel, "imagine", prompt="a busy market")

    running = world.message(first.response.id)
    waiting = world.message(second.response.id)
    assert "Running: 0%" in running.content
    assert "Waiting to start (position 1)" in waiting.content
    assert labels(waiting) == [["Cancel"]]

    info = await world.bob.slash(world.channel, "info")
    bob_job = await world.job_of(second.response.id)
    assert info.ephemeral
    assert f"`{bob_job.id}` waiting, position 1" in info.response.content
    assert "1 waiting, 1 running" in info.response.content and "stand-in" in info.response.content

    held.gate.set()
    await world.settled((await world.job_of(first.response.id)).id)
    await world.settled(bob_job.id)
    assert labels(world.message(second.response.id))[0][0] == "U1"


async def test_cancel_is_for_the_author_or_a_moderator(world, held):
    first = await world.alice.slash(world.channel, "imagine", prompt="a quiet harbour")
    second = await world.alice.slash(world.channel, "imagine", prompt="a second harbour")
    running = await world.job_of(first.response.id)
    waiting = await world.job_of(second.response.id)

    refused = await world.bob.click(world.message(second.response.id), label="Cancel")
    assert refused.ephemeral and "Only the author" in refused.response.content

    mine = await world.alice.click(world.message(second.response.id), label="Cancel")
    assert mine.ephemeral and "Cancelling" in mine.response.content
    await world.settled(waiting.id, "cancelled")
    assert "Cancelled" in world.message(second.response.id).content
    assert world.message(second.response.id).components == []

    await world.mod.click(world.message(first.response.id), label="Cancel")
    await world.settled(running.id, "cancelled")
    assert (await world.services.store.get_job(running.id)).status == "cancelled"


async def test_result_after_15_minutes_is_a_reply_in_the_channel(world, held):
    result = await world.alice.slash(world.channel, "imagine", prompt="a long queue")
    job = await world.job_of(result.response.id)

    await world.env.advance_time(16 * 60)  # the interaction token is dead now
    held.gate.set()
    await world.settled(job.id)

    reply = result_reply(world, result)
    assert (await world.services.store.get_job(job.id)).message_id == reply.id
    await world.bob.click(reply, label="U1")  # the reply's buttons work like any others
    assert (await world.job_of(world.channel.last_message.id)).user_id == world.bob.id


async def test_buttons_work_after_a_restart(world, services, allowed_hosts):
    grid = await world.alice.slash(world.channel, "imagine", prompt="an old lighthouse")
    job = await world.job_of(grid.response.id)
    await world.settled(job.id)

    await world.env.restart_bot(make_bot(services, allowed_hosts))

    result = await world.bob.click(world.message(grid.response.id), label="U3")
    assert not result.ephemeral
    single = world.channel.last_message
    new_job = await world.job_of(single.id)
    assert new_job.parent_id == job.id and new_job.parent_index == 2 and new_job.user_id == world.bob.id
    assert single.reference.message_id == grid.response.id


async def test_a_job_left_running_by_a_stopped_bot_posts_its_result_after_the_restart(
    world, held, services, settings, allowed_hosts
):
    pending = await world.alice.slash(world.channel, "imagine", prompt="still running at restart")
    job = await world.job_of(pending.response.id)
    await services.stop(grace_s=0.1)  # the process goes away: the job goes back to queued
    assert (await Store_job_status(settings, job.id)) == "queued"

    # A new process, started the way `imagine-bot` starts: open the services, build the bot
    # (its messenger listens), recover the job, then Discord connects.
    held.gate = asyncio.Event()
    fresh = await Services.open(settings, engine=held)
    try:
        bot = make_bot(fresh, allowed_hosts)
        assert await fresh.start_dispatching(recover=lambda job: job.source == "discord") == [job.id]
        await world.env.restart_bot(bot)
        held.gate.set()
        await world.settled(job.id)
        reply = world.channel.last_message
        assert reply.reference.message_id == pending.response.id and len(reply.attachments) == 1
        assert labels(reply)[0][0] == "U1"
    finally:
        await fresh.stop(grace_s=1.0)


async def Store_job_status(settings, job_id: str) -> str:

    store = await Store.open(settings.database_url, settings.data_dir)
    try:
        return (await store.get_job(job_id)).status
    finally:
        await store.close()


async def test_a_failed_job_says_why(world, engine):
    engine.fail_with = "the picture would be larger than 2048x2048"
    result = await world.alice.slash(world.channel, "imagine", prompt="a very wide road")
    job = await world.job_of(result.response.id)
    await world.settled(job.id, "failed")
    message = world.message(result.response.id)
    assert "Failed: the picture would be larger than 2048x2048" in message.content
    assert message.components == [] and message.attachments == []


async def test_too_many_waiting_jobs_are_refused_privately(world, held):

    world.services.dispatcher.limits = Limits(max_running_per_user=1, max_queued_per_user=1)
    await world.alice.slash(world.channel, "imagine", prompt="one")  # runs (held)
    await world.alice.slash(world.channel, "imagine", prompt="two")  # waits
    refused = await world.alice.slash(world.channel, "imagine", prompt="three")

    assert "the limit is 1" in private_reply(refused)
    assert len(await world.services.store.user_jobs(world.alice.id)) == 2


async def test_show_of_a_running_job_is_kept_up_to_date_too(world, held):
    first = await world.alice.slash(world.channel, "imagine", prompt="a slow sunrise")
    job = await world.job_of(first.response.id)
    shown = await world.bob.slash(world.channel, "show", job_id=job.id)
    assert "Running" in world.message(shown.response.id).content

    held.gate.set()
    await world.settled(job.id)

    for message_id in (first.response.id, shown.response.id):
        message = world.message(message_id)
        assert labels(message)[0][0] == "U1" and len(message.attachments) == 1


async def test_a_job_hidden_while_running_posts_nothing_when_it_ends(world, held):

    result = await world.alice.slash(world.channel, "imagine", prompt="something against the rules")
    job = await world.job_of(result.response.id)
    job = await world.services.store.set_hidden(job.id, True, world.mod.id, "rule 2")
    assert await world.bot.messenger.replace_everywhere(job, HIDDEN_NOTICE) == 1

    held.gate.set()
    await world.quiet()

    assert world.channel.last_message.id == result.response.id
    message = world.message(result.response.id)
    assert message.content == HIDDEN_NOTICE and message.attachments == [] and message.components == []
