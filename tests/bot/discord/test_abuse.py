"""Discord-level abuse: a burst of commands from one member, and buttons carrying another
server's job. Limits hold, the queue stays fair, and every refusal is a private sentence."""

from __future__ import annotations

import asyncio

from bot.discord.buttons import ButtonSpec, job_view
from bot.discord.render import RenderedMessage
from bot.dispatcher import LimitError
from bot.jobs import Requester
from tests.bot.discord.conftest import private_reply


async def test_thirty_imagines_within_a_second_keep_the_limits_and_the_queue_fair(world, held):
    allowed = world.services.dispatcher.limits.max_queued_per_user
    began = world.env.now()

    # SimCord delivers one interaction at a time, in virtual time: 30 commands inside a second.
    results = [await world.alice.slash(world.channel, "imagine", prompt=f"burst {n}") for n in range(30)]
    bob = await world.bob.slash(world.channel, "imagine", prompt="one job of bob's")

    assert (world.env.now() - began).total_seconds() < 1.0
    assert not world.env.errors, world.env.errors  # nothing escaped into discord.py's handlers
    accepted = [r for r in results if not r.ephemeral and r.response is not None]
    refused = [r for r in results if r not in accepted]
    assert len(accepted) == allowed + 1  # one running (the engine has one slot) and the limit waiting
    for result in refused:
        assert f"the limit is {allowed}" in private_reply(result)
    jobs = await world.services.store.user_jobs(world.alice.id)
    assert len(jobs) == len(accepted)  # a refused command leaves no row
    assert sorted(j.status for j in jobs) == ["queued"] * allowed + ["running"]

    # Bob's single job waits behind one of Alice's (the ring alternates), not behind her burst.
    bob_job = await world.job_of(bob.response.id)
    assert world.services.dispatcher.position(bob_job.id) == 2

    held.gate.set()
    await world.settled(bob_job.id)
    for job in jobs:
        await world.settled(job.id)


async def test_thirty_concurrent_submissions_from_one_member_never_pass_the_limit(world, held):
    """The same burst below Discord, truly concurrent: the capacity check and the rows race."""
    limits = world.services.dispatcher.limits
    who = Requester(user_id=world.alice.id, user_name="alice", guild_id=world.guild.id)

    outcomes = await asyncio.gather(
        *(world.services.jobs.imagine(who, f"burst {n}") for n in range(30)), return_exceptions=True
    )

    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert all(isinstance(e, LimitError) for e in errors), errors
    live = [
        j for j in await world.services.store.user_jobs(world.alice.id) if j.status in {"queued", "running"}
    ]
    assert len(live) == 30 - len(errors) <= limits.max_queued_per_user + 1
    # A row that lost the race is closed with the reason, never left queued for a restart.
    for job in await world.services.store.user_jobs(world.alice.id):
        assert job.status in {"queued", "running"} or (job.status == "cancelled" and "limit" in job.error)
    held.gate.set()
    await world.services.dispatcher.wait_idle()


async def test_a_button_of_another_servers_job_is_refused(world):
    result = await world.alice.slash(world.channel, "imagine", prompt="a red fox in snow --seed 11")
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    elsewhere = world.env.create_guild()
    channel = elsewhere.create_text_channel("other")
    stranger = elsewhere.add_member(world.env.create_user("stranger"))
    before = len(await world.services.store.user_jobs(stranger.id))

    for spec in (
        ButtonSpec("upscale", job.id, 1),
        ButtonSpec("reroll", job.id),
        ButtonSpec("vary", job.id, 2),
    ):
        forged = job_view([[spec]])
        forged.children[0].item.label = "Copied"
        message = await world.bot.messenger.send_to_channel(channel.id, RenderedMessage("x", view=forged))
        clicked = await stranger.click(world.message_in(channel, message.id), label="Copied")
        assert clicked.ephemeral and f"There is no job `{job.id}` in this server" in clicked.response.content

    assert len(await world.services.store.user_jobs(stranger.id)) == before == 0
