"""The job message when edits go wrong: a hide racing an edit already under way, and Discord
failing an edit."""

from __future__ import annotations

import asyncio

import discord
import simcord

from bot.discord.render import HIDDEN_NOTICE
from storage.errors import DatabaseBusyError
from tests.bot.discord.conftest import labels, result_reply


async def test_a_progress_edit_under_way_when_the_job_is_hidden_does_not_bring_it_back(
    world, held, monkeypatch
):
    result = await world.alice.slash(world.channel, "imagine", prompt="something against the rules")
    job = await world.job_of(result.response.id)
    assert "Running: 0%" in world.message(result.response.id).content

    # Hold the next progress edit just before it reaches Discord, with its content already made.
    messenger = world.bot.messenger
    edit, in_flight, release = messenger._edit, asyncio.Event(), asyncio.Event()

    async def held_edit(tracked, message):
        if "Running" in message.content and not release.is_set():
            in_flight.set()
            try:
                await world.env.external_wait(release.wait(), reason="test holds a Discord edit")
            except simcord.SetupError:
                await release.wait()
        await edit(tracked, message)

    monkeypatch.setattr(messenger, "_edit", held_edit)
    held.gate.set()
    await asyncio.wait_for(in_flight.wait(), 10)

    job = await world.services.store.set_hidden(job.id, True, world.mod.id, "rule 2")
    hide = asyncio.create_task(messenger.replace_everywhere(job, HIDDEN_NOTICE))
    while messenger._locks[job.id][1][0] < 2:  # until the hide waits for the edit under way
        await asyncio.sleep(0)
    release.set()
    assert await asyncio.wait_for(hide, 10) == 1
    await world.quiet()

    message = world.message(result.response.id)
    assert message.content == HIDDEN_NOTICE
    assert message.attachments == [] and message.components == []
    assert world.channel.last_message.id == result.response.id


async def test_a_job_unhidden_while_running_still_posts_its_result(world, held):
    result = await world.alice.slash(world.channel, "imagine", prompt="a misunderstanding")
    job = await world.job_of(result.response.id)
    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response
    await world.mod.submit_modal(await world.mod.click(details, label="Hide"), {"reason": ""})
    assert world.message(result.response.id).content == HIDDEN_NOTICE

    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response
    await world.mod.click(details, label="Unhide")
    held.gate.set()
    await world.settled(job.id)

    reply = world.channel.last_message
    assert reply.reference is not None and reply.reference.message_id == result.response.id
    assert len(reply.attachments) == 1 and labels(reply)[0][0] == "U1"


async def test_a_result_edit_that_discord_fails_becomes_a_reply(world, held):
    result = await world.alice.slash(world.channel, "imagine", prompt="a stormy sea")
    job = await world.job_of(result.response.id)

    world.env.inject_error("PATCH", "/webhooks/*", status=500, times=None)  # every edit from now
    held.gate.set()
    await world.settled(job.id)

    reply = result_reply(world, result)
    assert (world.channel.id, reply.id) in await world.services.store.job_messages(job.id)


async def test_a_failed_progress_edit_is_retried_by_the_next_one(world, held):
    result = await world.alice.slash(world.channel, "imagine", prompt="a calm lake")
    job = await world.job_of(result.response.id)

    world.env.inject_error("PATCH", "/webhooks/*", status=503, times=1)  # the next edit only
    held.gate.set()
    await world.settled(job.id)

    message = world.message(result.response.id)
    assert len(message.attachments) == 1 and labels(message)[0][0] == "U1"
    assert world.channel.last_message.id == result.response.id  # no reply was needed


async def test_a_result_read_while_the_first_message_is_being_registered_is_shown(world, monkeypatch):
    """The job finishes while its first message is being sent, and the bot reads the finished
    job just before that message is registered: the result must still reach the message."""

    messenger, store = world.bot.messenger, world.services.store
    reading, tracked = asyncio.Event(), asyncio.Event()
    read, track, send = store.get_job, messenger.track, discord.Interaction.edit_original_response

    async def reading_job(job_id):
        job = await read(job_id)
        task = asyncio.current_task()
        worker = task is not None and task.get_name() == "job-messenger"
        if worker and job.status == "done" and job.message_id is None and not tracked.is_set():
            reading.set()  # the row says: finished, no message yet
            await world.env.external_wait(tracked.wait(), reason="test: message registered meanwhile")
        return job

    async def slow_send(self, **kwargs):
        await world.env.external_wait(reading.wait(), reason="test: the job finishes first")
        return await send(self, **kwargs)

    def tracking(*args, **kwargs):
        track(*args, **kwargs)
        tracked.set()

    monkeypatch.setattr(store, "get_job", reading_job)
    monkeypatch.setattr(discord.Interaction, "edit_original_response", slow_send)
    monkeypatch.setattr(messenger, "track", tracking)

    result = await world.alice.slash(world.channel, "imagine", prompt="a quick sketch")
    job = await world.job_of(result.response.id)
    await world.settled(job.id, timeout=10)

    assert reading.is_set()
    message = world.message(result.response.id)
    assert len(message.attachments) == 1 and labels(message)[0][0] == "U1"


async def test_a_result_whose_job_cannot_be_read_once_is_shown_on_the_next_try(world, held, monkeypatch):

    result = await world.alice.slash(world.channel, "imagine", prompt="a busy evening")
    job = await world.job_of(result.response.id)
    store, read, failures = world.services.store, world.services.store.get_job, []

    async def busy_once(job_id):
        found = await read(job_id)
        task = asyncio.current_task()
        if (
            task is not None
            and task.get_name() == "job-messenger"
            and found.status == "done"
            and not failures
        ):
            failures.append(job_id)
            raise DatabaseBusyError("the database stayed busy for 30 s (9 attempts); please try again")
        return found

    monkeypatch.setattr(store, "get_job", busy_once)
    held.gate.set()
    await world.settled(job.id, timeout=10)

    assert failures == [job.id]
    message = world.message(result.response.id)
    assert len(message.attachments) == 1 and labels(message)[0][0] == "U1"
