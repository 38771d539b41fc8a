"""Moderator actions through SimCord: hide/unhide, bans (with expiry on virtual time), banned
words and the blocked job they leave, reports, channel settings, the log channel, the audit log."""

from __future__ import annotations

from datetime import timedelta

from bot.discord import render
from storage.queries import HistoryQuery
from tests.bot.discord import test_mod_helpers
from tests.bot.discord.conftest import labels, private_answer
from tests.bot.discord.test_mod_helpers import make_job

mod_clock = test_mod_helpers.mod_clock  # the fixture, used by name below

HIDDEN = "🚫 This job was hidden by a moderator."


async def actions(world) -> list[str]:
    return [entry.action for entry in reversed(await world.services.store.audit_log(world.guild.id))]


# -- hide / unhide ---------------------------------------------------------------------------


async def test_hide_replaces_the_message_and_keeps_the_images(world):
    job = await make_job(world, world.alice, "a rude drawing")
    assert labels(world.message(job.message_id))  # buttons before
    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response

    shown = await world.mod.click(details, label="Hide")
    await world.mod.submit_modal(shown, {"reason": "off-topic"})

    message = world.message(job.message_id)
    assert message.content == HIDDEN and message.attachments == [] and labels(message) == []
    stored = await world.services.store.get_job(job.id)
    assert stored.hidden and stored.hidden_reason == "off-topic" and stored.hidden_by == world.mod.id
    assert all(world.services.store.files.exists(image.path) for image in stored.images)
    [entry] = await world.services.store.audit_log(world.guild.id)
    assert (entry.action, entry.target_job_id, entry.moderator_id, entry.reason) == (
        "hide",
        job.id,
        world.mod.id,
        "off-topic",
    )


async def test_buttons_of_a_hidden_job_stop_working(world):
    job = await make_job(world, world.alice, "a rude drawing")
    # A copy the store does not know about (a forwarded or stale message) keeps its buttons.
    copy = await world.bot.messenger.send_to_channel(
        world.channel.id, await render.job_message(job, world.services)
    )
    await world.env.settle()
    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response
    await world.mod.submit_modal(await world.mod.click(details, label="Hide"), {"reason": "rude"})

    clicked = await world.bob.click(world.message(copy.id), label="U1")

    assert "hidden" in private_answer(clicked)
    assert await world.services.store.user_jobs(world.bob.id) == []


async def test_unhide_brings_back_the_result_and_buttons(world):
    job = await make_job(world, world.alice, "a misunderstood drawing")
    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response
    await world.mod.submit_modal(await world.mod.click(details, label="Hide"), {"reason": ""})

    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response
    done = await world.mod.click(details, label="Unhide")

    assert "Unhid job" in done.response.content
    message = world.message(job.message_id)
    assert "a misunderstood drawing" in message.content
    assert labels(message)[0][:4] == ["U1", "U2", "U3", "U4"]
    assert len(message.attachments) == 1
    assert not (await world.services.store.get_job(job.id)).hidden
    assert await actions(world) == ["hide", "unhide"]


async def test_hide_and_unhide_reach_a_copy_shown_in_another_channel(world):
    job = await make_job(world, world.alice, "a lighthouse at dusk")
    original = job.message_id
    gallery = world.guild.create_text_channel("gallery")
    shown = await world.bob.slash(gallery, "show", job_id=job.id)
    copy = shown.response.id
    assert len(world.message_in(gallery, copy).attachments) == 1

    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response
    await world.mod.submit_modal(await world.mod.click(details, label="Hide"), {"reason": "rude"})

    for channel, message_id in ((world.channel, original), (gallery, copy)):
        message = world.message_in(channel, message_id)
        assert message.content == HIDDEN and message.attachments == [] and labels(message) == []

    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response
    assert "Unhid job" in (await world.mod.click(details, label="Unhide")).response.content

    for channel, message_id in ((world.channel, original), (gallery, copy)):
        message = world.message_in(channel, message_id)
        assert "a lighthouse at dusk" in message.content and len(message.attachments) == 1
        assert labels(message)[0][:4] == ["U1", "U2", "U3", "U4"]


# -- bans ------------------------------------------------------------------------------------


async def test_ban_refuses_imagine_with_reason_and_end_and_queues_nothing(world, mod_clock):
    result = await world.mod.slash(world.channel, "mod ban", user=world.alice, reason="spam", duration="2h")
    assert result.ephemeral and "Banned" in result.response.content

    refused = await world.alice.slash(world.channel, "imagine", prompt="a lighthouse")

    text = private_answer(refused)
    end = mod_clock() + timedelta(hours=2)
    assert "spam" in text and f"{end:%Y-%m-%d %H:%M} UTC" in text
    assert await world.services.store.user_jobs(world.alice.id) == []
    assert world.services.dispatcher.queue_length() == 0


async def test_banned_member_cannot_click_buttons(world, mod_clock):
    job = await make_job(world, world.bob, "a calm lake")
    await world.mod.slash(world.channel, "mod ban", user=world.alice, reason="trolling")

    clicked = await world.alice.click(world.message(job.message_id), label="U1")

    text = private_answer(clicked)
    assert "trolling" in text and "lifts it" in text
    assert await world.services.store.user_jobs(world.alice.id) == []


async def test_timed_ban_ends_by_itself_on_virtual_time(world, mod_clock):
    await world.mod.slash(world.channel, "mod ban", user=world.alice, reason="cool off", duration="30m")
    assert (await world.mod.slash(world.channel, "mod bans")).response.embeds[0].description.count("<@") == 2

    await world.env.advance_time(31 * 60)

    bans = (await world.mod.slash(world.channel, "mod bans")).response.embeds[0]
    assert bans.description == "Nobody is banned."
    allowed = await world.alice.slash(world.channel, "imagine", prompt="a lighthouse")
    assert not allowed.ephemeral
    assert len(await world.services.store.user_jobs(world.alice.id)) == 1


async def test_unban_lifts_and_bad_duration_changes_nothing(world, mod_clock):
    bad = await world.mod.slash(world.channel, "mod ban", user=world.alice, duration="a while")
    assert "Can't read the duration 'a while'" in bad.response.content
    assert await world.services.store.active_ban(world.alice.id, world.guild.id, mod_clock()) is None

    await world.mod.slash(world.channel, "mod ban", user=world.alice, reason="x")
    lifted = await world.mod.slash(world.channel, "mod unban", user=world.alice)
    assert "Lifted the ban" in lifted.response.content
    again = await world.mod.slash(world.channel, "mod unban", user=world.alice)
    assert "is not banned" in again.response.content
    assert await actions(world) == ["ban", "unban"]


async def test_cannot_ban_self_a_bot_or_another_moderator(world, mod_clock):
    other_mod = world.guild.add_member(world.env.create_user("mod2"), roles=[world.guild.roles["Mods"]])
    for target, words in ((world.mod, "yourself"), (other_mod, "is a moderator")):
        result = await world.mod.slash(world.channel, "mod ban", user=target, reason="x")
        assert words in result.response.content
    assert await world.services.store.bans(world.guild.id) == []
    assert await actions(world) == []


async def test_ban_author_from_job_details(world, mod_clock):
    job = await make_job(world, world.bob, "a rude drawing")
    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response

    shown = await world.mod.click(details, label="Ban author")
    done = await world.mod.submit_modal(shown, {"reason": "rude pictures", "duration": "7d"})

    assert "Banned" in done.response.content
    ban = await world.services.store.active_ban(world.bob.id, world.guild.id, mod_clock())
    assert ban.reason == "rude pictures" and ban.moderator_id == world.mod.id


# -- banned words ----------------------------------------------------------------------------


async def test_banned_word_blocks_evasions_and_records_a_blocked_job(world):
    added = await world.mod.slash(world.channel, "mod words add", pattern="Gore")
    assert "Added `gore`" in added.response.content

    for prompt in [
        "so much gore",
        "G.O.R.E",
        "g\u200bore",
        "ｇｏｒｅ",
        "a {calm, gore} lake",
        "a lake --no g-o-r-e",
    ]:
        refused = await world.alice.slash(world.channel, "imagine", prompt=prompt)
        text = private_answer(refused)
        assert "content rules" in text and "gore" not in text.lower(), prompt

    allowed = await world.alice.slash(world.channel, "imagine", prompt="a gorgeous lake")
    assert not allowed.ephemeral

    blocked = await world.services.store.history(HistoryQuery(guild_id=world.guild.id, status="blocked"))
    assert len(blocked.jobs) == 6 and {job.blocked_rule for job in blocked.jobs} == {"gore"}
    assert {job.user_id for job in blocked.jobs} == {world.alice.id}
    page = (await world.mod.slash(world.channel, "mod history", status="blocked")).response
    assert len(page.embeds) == 5  # the first page
    assert all("blocked · rule gore" in embed.fields[1].value for embed in page.embeds)


async def test_words_list_remove_and_regex_validation(world):
    await world.mod.slash(world.channel, "mod words add", pattern="gore")
    await world.mod.slash(world.channel, "mod words add", pattern=r"bl[o0]{2}d", regex=True)
    bad = await world.mod.slash(world.channel, "mod words add", pattern="(a+)+", regex=True)
    assert "repeat inside a repeat" in bad.response.content
    dup = await world.mod.slash(world.channel, "mod words add", pattern="GORE")
    assert "already on the list" in dup.response.content

    listed = (await world.mod.slash(world.channel, "mod words list")).response.embeds[0]
    assert [field.value for field in listed.fields] == ["`gore`", r"`/bl[o0]{2}d/`"]

    removed = await world.mod.slash(world.channel, "mod words remove", pattern=r"/bl[o0]{2}d/")
    assert "Removed" in removed.response.content
    missing = await world.mod.slash(world.channel, "mod words remove", pattern="nothing")
    assert "not on the list" in missing.response.content
    assert [w.pattern for w in await world.services.store.banned_words(world.guild.id)] == ["gore"]
    assert await actions(world) == ["word_add", "word_add", "word_remove"]


# -- reports ---------------------------------------------------------------------------------


async def report(world, member, job, reason: str):
    shown = await member.context_menu(world.channel, "Report job", world.message(job.message_id))
    return await member.submit_modal(shown, {"reason": reason})


async def test_report_worked_through_resolve_hide_and_ban(world, mod_clock):
    logs = world.guild.create_text_channel("mod-log")
    await world.services.store.update_guild_settings(world.guild.id, log_channel_id=logs.id)
    calm = await make_job(world, world.bob, "a calm lake")
    rude = await make_job(world, world.bob, "a rude drawing")
    worse = await make_job(world, world.alice, "a worse drawing")
    thanks = await report(world, world.alice, calm, "I just don't like it")
    assert thanks.ephemeral and "Thanks" in thanks.response.content
    await report(world, world.alice, rude, "rude")
    await report(world, world.bob, worse, "much worse")

    assert any(f"reported job `{rude.id}`: rude" in message.content for message in logs.history())
    again = await report(world, world.alice, rude, "still rude")  # the same member, still open
    assert again.ephemeral

    queue = (await world.mod.slash(world.channel, "mod reports")).response
    assert queue.embeds[0].title == "Report 1 of 3" and "I just don't like it" in queue.embeds[0].description

    await world.mod.click(queue, label="Resolve")
    assert queue.message.embeds[0].title == "Report 1 of 2"
    assert "rude" in queue.message.embeds[0].description

    await world.mod.click(queue, label="Hide job")
    assert world.message(rude.message_id).content == HIDDEN
    assert "much worse" in queue.message.embeds[0].description

    shown = await world.mod.click(queue, label="Ban author")
    await world.mod.submit_modal(shown, {"reason": "repeat offender", "duration": ""})
    assert queue.message.content == "No open reports."
    assert (await world.services.store.active_ban(world.alice.id, world.guild.id, mod_clock())).reason == (
        "repeat offender"
    )

    states = {r.job_id: r.state for r in await world.services.store.reports(world.guild.id, state=None)}
    assert states == {calm.id: "resolved", rude.id: "actioned", worse.id: "actioned"}
    assert await actions(world) == ["report_resolved", "hide", "report_actioned", "ban", "report_actioned"]


async def test_report_on_a_message_that_is_not_a_job(world):
    await world.alice.send(world.channel, "hello")
    result = await world.bob.context_menu(world.channel, "Report job", world.channel.last_message)
    assert result.ephemeral and "nothing to report" in result.response.content


async def test_no_open_reports(world):
    result = await world.mod.slash(world.channel, "mod reports")
    assert result.response.content == "No open reports."


# -- channels, log channel, audit ------------------------------------------------------------


async def test_channel_settings_and_log_channel(world):
    logs = world.guild.create_text_channel("mod-log")
    other = world.guild.create_text_channel("memes")

    await world.mod.slash(world.channel, "mod channels log", channel=logs)
    await world.mod.slash(world.channel, "mod channels allow", channel=world.channel)
    await world.mod.slash(world.channel, "mod channels spoiler", channel=other, enabled=True)

    settings = await world.services.store.guild_settings(world.guild.id)
    assert settings.allowed_channel_ids == [world.channel.id]
    assert settings.spoiler_channel_ids == [other.id]
    assert settings.log_channel_id == logs.id
    shown = (await world.mod.slash(world.channel, "mod channels show")).response.content
    assert f"<#{world.channel.id}>" in shown and f"<#{other.id}>" in shown

    await world.mod.slash(world.channel, "mod words add", pattern="gore")
    posted = [message.content for message in logs.history()]
    assert any("allowed /imagine" in text for text in posted)
    assert any("spoilers results" in text for text in posted)
    assert any("banned word `gore`" in text for text in posted)

    await world.mod.slash(world.channel, "mod channels disallow", channel=world.channel)
    assert (await world.services.store.guild_settings(world.guild.id)).allowed_channel_ids == []
    assert await actions(world) == [
        "log_channel",
        "channel_allow",
        "channel_spoiler",
        "word_add",
        "channel_disallow",
    ]


async def test_audit_command_lists_actions(world, mod_clock):
    await world.mod.slash(world.channel, "mod ban", user=world.alice, reason="spam")
    await world.mod.slash(world.channel, "mod words add", pattern="gore")
    embed = (await world.mod.slash(world.channel, "mod audit")).response.embeds[0]
    lines = embed.description.splitlines()
    assert "**word_add**" in lines[0] and "**ban**" in lines[1] and f"<@{world.alice.id}>" in lines[1]
