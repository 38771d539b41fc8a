"""Fast and Relax through SimCord: modes, the budget a moderator sets, the notice, /info."""

from __future__ import annotations

from bot.core import fast
from tests.bot.discord.conftest import private_answer
from tests.bot.discord.test_buttons import imagine


async def test_relax_and_fast_commands_set_the_mode_and_info_shows_it(world):
    result = await world.alice.slash(world.channel, "relax")
    assert result.ephemeral and "Relax mode" in result.response.content
    _, job = await imagine(world, world.alice, "a red fox in snow")
    assert job.params["speed"] == "relax"

    info = await world.alice.slash(world.channel, "info")
    assert "**Mode:** relax" in info.response.content and "Fast time:** unlimited" in info.response.content

    turbo = await world.alice.slash(world.channel, "turbo")
    assert turbo.ephemeral and "Turbo mode is off on this bot" in turbo.response.content
    await world.alice.slash(world.channel, "fast")
    _, job = await imagine(world, world.alice, "a red fox in snow")
    assert job.params["speed"] == "fast"


async def test_a_budget_runs_out_into_relax_with_a_private_notice_and_a_grant_restores_it(world):
    members = await world.mod.slash(world.channel, "fastmod budget", minutes=0.001)  # 0.06 s each
    assert members.ephemeral and "everyone: 0.001 minutes" in members.response.content

    await imagine(world, world.alice, "a red fox in snow")  # spends the stand-in's time
    store = world.services.store

    now = await fast.balance(store, world.alice.id, world.guild.id)
    await store.add_fast_usage(world.alice.id, world.guild.id, now.period_start, used_s=1.0)

    result = await world.alice.slash(world.channel, "imagine", prompt="a blue fox in snow --fast")
    notice = private_answer(result)
    assert "Fast time on this server is used up" in notice and "Relax mode" in notice
    job = await world.job_of(result.response.id)
    assert job.params["speed"] == "relax"
    await world.settled(job.id)
    info = await world.alice.slash(world.channel, "info")
    assert "Fast time:** 0s left, resets <t:" in info.response.content

    granted = await world.mod.slash(world.channel, "fastmod grant", member=world.alice, minutes=5)
    assert granted.ephemeral and "Granted 5 Fast minutes" in granted.response.content
    _, again = await imagine(world, world.alice, "a blue fox in snow")
    assert again.params["speed"] == "fast"


async def test_members_cannot_change_budgets_and_a_negative_budget_is_refused(world):
    result = await world.alice.slash(world.channel, "fastmod grant", member=world.alice, minutes=60)
    assert result.ephemeral and result.response.content == "Only moderators can change Fast time."
    negative = await world.mod.slash(world.channel, "fastmod budget", minutes=-5)
    assert (
        negative.ephemeral
        and "from 0 to" in negative.response.content
        and "-5 is not" in negative.response.content
    )
    zero = await world.mod.slash(world.channel, "fastmod grant", member=world.alice, minutes=0)
    assert zero.ephemeral and "more than 0" in zero.response.content
    settings = await world.services.store.guild_settings(world.guild.id)
    assert settings.fast_seconds is None
    assert (await world.services.store.member_settings(world.alice.id, world.guild.id)).speed == "fast"


async def test_settings_has_fast_and_relax_buttons(world):
    shown = (await world.alice.slash(world.channel, "settings")).response
    result = await world.alice.click(shown, label="Relax mode")
    assert "Mode: relax" in result.response.content
    assert (await world.services.store.member_settings(world.alice.id, world.guild.id)).speed == "relax"
