"""`/mod settings`: who may click result buttons, and the per-member job limits, set by a
moderator through SimCord and felt by members; refused to everyone else; audited."""

from __future__ import annotations

import asyncio

import pytest
from simcord import OptionError

from bot.core.moderation import validate_rule
from tests.bot.discord.conftest import private_reply
from tests.bot.discord.test_buttons import click, others_are_refused
from tests.support.stand_in_engine import StandInEngine


@pytest.fixture
def engine() -> StandInEngine:
    """Two jobs at once, so a running limit of 1 is visible (with one slot it never binds)."""
    return StandInEngine(slots=2, textured=True)


async def audit(world) -> list[tuple[str, int, dict]]:
    entries = reversed(await world.services.store.audit_log(world.guild.id))
    return [(entry.action, entry.moderator_id, entry.details) for entry in entries]


async def shown_settings(world) -> str:
    return (await world.mod.slash(world.channel, "mod settings show")).response.content


def show_mod_to(world, member) -> None:
    """A server admin shows `/mod` to a member without Manage Messages (integration settings)."""
    command = world.env.backend.find_command("mod", world.guild.id)
    world.guild.set_command_permissions(int(command["id"]), {member: True})


# -- buttons -----------------------------------------------------------------------------------


async def test_author_only_buttons_refuse_other_members_until_switched_back(world):
    assert "anyone in the channel" in await shown_settings(world)
    set_author = await world.mod.slash(world.channel, "mod settings buttons", who="author")
    assert set_author.ephemeral and "only by the job's author" in set_author.response.content
    assert "only the job's author" in await shown_settings(world)

    grid = await others_are_refused(world)
    _, own = await click(world, world.alice, grid, "V2")  # the author still may
    assert own.user_id == world.alice.id

    await world.mod.slash(world.channel, "mod settings buttons", who="anyone")
    _, job = await click(world, world.bob, grid, "V1")
    assert job.user_id == world.bob.id and job.kind == "vary"
    assert "anyone in the channel" in await shown_settings(world)
    assert await audit(world) == [
        ("author_only_buttons", world.mod.id, {"author_only_buttons": True}),
        ("author_only_buttons", world.mod.id, {"author_only_buttons": False}),
    ]


async def test_setting_buttons_to_what_they_are_changes_nothing(world):
    result = await world.mod.slash(world.channel, "mod settings buttons", who="anyone")
    assert "already usable by anyone" in result.response.content
    assert await audit(world) == []


async def test_channels_show_lists_the_button_and_limit_settings_too(world):
    await world.mod.slash(world.channel, "mod settings buttons", who="author")
    shown = (await world.mod.slash(world.channel, "mod channels show")).response.content
    assert "only the job's author" in shown and "3 running, 10 waiting (the bot's defaults)" in shown


async def test_settings_are_posted_to_the_log_channel(world):
    logs = world.guild.create_text_channel("mod-log")
    await world.mod.slash(world.channel, "mod channels log", channel=logs)
    await world.mod.slash(world.channel, "mod settings buttons", who="author")
    await world.mod.slash(world.channel, "mod settings limits", queued=4)
    posted = [message.content for message in logs.history()]
    assert any("only by the job's author" in text for text in posted)
    assert any("3 running, 4 waiting" in text for text in posted)


# -- limits ------------------------------------------------------------------------------------


async def test_limits_bind_members_and_reset_restores_the_defaults(world, engine):
    result = await world.mod.slash(world.channel, "mod settings limits", running=1, queued=1)
    assert result.ephemeral and "1 running, 1 waiting" in result.response.content
    assert "1 running, 1 waiting (this server's)" in await shown_settings(world)

    engine.gate = asyncio.Event()  # jobs start, then wait
    first = await world.alice.slash(world.channel, "imagine", prompt="one")
    second = await world.alice.slash(world.channel, "imagine", prompt="two")
    refused = await world.alice.slash(world.channel, "imagine", prompt="three")
    other = await world.bob.slash(world.channel, "imagine", prompt="four")
    await world.env.settle()

    assert "the limit is 1" in private_reply(refused)
    jobs = {r: await world.job_of(r.response.id) for r in (first, second, other)}
    # Two engine slots, but alice may run one job: her second waits and bob's takes the slot.
    assert [request.job_id for request in engine.requests] == [jobs[first].id, jobs[other].id]
    assert (await world.services.store.get_job(jobs[second].id)).status == "queued"
    assert len(await world.services.store.user_jobs(world.alice.id)) == 2

    engine.gate.set()
    for job in jobs.values():
        await world.settled(job.id)

    await world.mod.slash(world.channel, "mod settings limits", reset=True)
    assert "3 running, 10 waiting (the bot's defaults)" in await shown_settings(world)
    assert await audit(world) == [
        ("user_limits", world.mod.id, {"max_running_per_user": 1, "max_queued_per_user": 1}),
        ("user_limits", world.mod.id, {"max_running_per_user": None, "max_queued_per_user": None}),
    ]


async def test_one_limit_keeps_the_other(world):
    await world.mod.slash(world.channel, "mod settings limits", running=2)
    await world.mod.slash(world.channel, "mod settings limits", queued=20)
    settings = await world.services.store.guild_settings(world.guild.id)
    assert (settings.max_running_per_user, settings.max_queued_per_user) == (2, 20)
    assert "2 running, 20 waiting (this server's)" in await shown_settings(world)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "Give `running`, `queued` or both"),
        ({"running": 2, "reset": True}, "not both"),
    ],
)
async def test_unclear_limits_are_refused_and_change_nothing(world, options, message):
    result = await world.mod.slash(world.channel, "mod settings limits", **options)
    assert result.ephemeral and message in result.response.content
    settings = await world.services.store.guild_settings(world.guild.id)
    assert (settings.max_running_per_user, settings.max_queued_per_user) == (None, None)
    assert await audit(world) == []


@pytest.mark.parametrize(("option", "value"), [("running", 0), ("running", 11), ("queued", 51)])
async def test_limits_out_of_range_are_refused_by_discord(world, option, value):
    with pytest.raises(OptionError, match=option):
        await world.mod.slash(world.channel, "mod settings limits", **{option: value})
    assert await audit(world) == []


# -- who may --------------------------------------------------------------------------------------


async def test_members_neither_see_nor_run_mod_settings(world):
    seen = set(world.alice.available_commands(world.channel))
    assert not any(name.startswith("mod settings") for name in seen)
    assert {"mod settings buttons", "mod settings limits", "mod settings show"} <= set(
        world.mod.available_commands(world.channel)
    )

    show_mod_to(world, world.bob)
    buttons = await world.bob.slash(world.channel, "mod settings buttons", who="author")
    limits = await world.bob.slash(world.channel, "mod settings limits", queued=1)
    shown = await world.bob.slash(world.channel, "mod settings show")

    for result in (buttons, limits, shown):
        assert result.ephemeral and "Only moderators" in result.response.content
    settings = await world.services.store.guild_settings(world.guild.id)
    assert not settings.author_only_buttons and settings.max_queued_per_user is None
    assert await audit(world) == []


# -- what the operator set for every server ------------------------------------------------------


async def test_operator_bans_and_words_are_marked_and_left_alone(world):
    """Bans and rules with no server come from the operator (through the store); moderators see
    them, marked, and are told they can't lift them, instead of 'not banned'."""

    store = world.services.store
    await store.ban(world.alice.id, None, "spam everywhere", None)
    await store.add_banned_word(None, validate_rule("Gore", False))

    bans = (await world.mod.slash(world.channel, "mod bans")).response.embeds[0]
    assert "spam everywhere" in bans.description and "every server" in bans.description
    unban = await world.mod.slash(world.channel, "mod unban", user=world.alice)
    assert "only the operator can lift" in unban.response.content
    assert await store.active_ban(world.alice.id, world.guild.id) is not None

    words = (await world.mod.slash(world.channel, "mod words list")).response.embeds[0]
    assert "`gore` 🌐" in words.fields[0].value and "operator" in words.footer.text
    remove = await world.mod.slash(world.channel, "mod words remove", pattern="gore")
    assert "only the operator can remove" in remove.response.content
    assert [rule.pattern for rule in await store.banned_words(world.guild.id)] == ["gore"]

    refused = await world.bob.slash(world.channel, "imagine", prompt="gore on the beach")
    assert "content rules" in private_reply(refused)
