"""Stealth mode through SimCord: moderators allow it, members choose it in /settings or with
/stealth and /public, and a stealth job is refused to other members as if it were not here."""

from __future__ import annotations

from tests.bot.discord.conftest import private_answer
from tests.bot.discord.test_buttons import click, imagine
from tests.bot.discord.test_remix_settings import _settings, button_labels

NOT_HERE = "There is no job `{}` in this server."


async def test_stealth_is_offered_only_where_the_server_allows_it(world):
    shown = await _settings(world, world.alice)
    assert "Visibility" not in shown.content
    assert not any("Stealth mode" in row for row in button_labels(shown.message))
    refused = await world.alice.slash(world.channel, "stealth")
    assert "not allowed on this server" in private_answer(refused)
    assert (await world.services.store.member_settings(world.alice.id, world.guild.id)).stealth is False

    allowed = await world.mod.slash(world.channel, "mod settings stealth", allow=True)
    assert allowed.response.content.startswith("Allowed Stealth mode")
    assert (
        "**Stealth mode:** allowed"
        in (await world.mod.slash(world.channel, "mod settings show")).response.content
    )
    shown = await _settings(world, world.alice)
    assert "Visibility: public" in shown.content
    toggled = await world.alice.click(shown, label="Stealth mode")
    assert "Visibility: stealth" in toggled.response.content
    public = await world.alice.slash(world.channel, "public")
    assert "Public mode" in private_answer(public)
    assert (await world.services.store.member_settings(world.alice.id, world.guild.id)).stealth is False


async def test_a_stealth_job_is_seen_only_by_its_author_and_moderators_and_stays_so(world):
    await world.mod.slash(world.channel, "mod settings stealth", allow=True)
    stealth = await world.alice.slash(world.channel, "stealth")
    assert "Stealth mode" in private_answer(stealth)
    grid, job = await imagine(world, world.alice, "a secret fox")
    assert job.params["stealth"] is True

    shown = await world.bob.slash(world.channel, "show", job_id=job.id)
    assert private_answer(shown) == NOT_HERE.format(job.id)
    clicked = await world.bob.click(grid, label="V1")
    assert private_answer(clicked) == NOT_HERE.format(job.id)
    count = len(await world.services.store.user_jobs(world.bob.id))
    assert count == 0  # the refusals made nothing

    assert not (await world.mod.slash(world.channel, "show", job_id=job.id)).ephemeral
    _, own = await click(world, world.alice, grid, "V2")  # the author's own buttons work
    assert own.params["stealth"] is True

    # The server stops allowing Stealth: new jobs are public, the old one stays stealth.
    await world.mod.slash(world.channel, "mod settings stealth", allow=False)
    later_grid, later = await imagine(world, world.alice, "an open fox")
    assert "stealth" not in later.params
    assert private_answer(await world.bob.slash(world.channel, "show", job_id=job.id)) == NOT_HERE.format(
        job.id
    )
    # Bob's re-roll of Alice's public job is Bob's and public, whatever her setting.
    await world.mod.slash(world.channel, "mod settings stealth", allow=True)
    _, rerolled = await click(world, world.bob, later_grid, "🔄")
    assert rerolled.user_id == world.bob.id and "stealth" not in rerolled.params
