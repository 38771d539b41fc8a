"""`/show`, `/prefer suffix`, permutations and `--repeat`, the author's delete, big uploads."""

from __future__ import annotations

import io

import discord
from PIL import Image

from bot.discord.render import DELETED_NOTICE, fit_upload
from tests.bot.discord.conftest import labels


async def imagine(world, member, prompt):
    result = await member.slash(world.channel, "imagine", prompt=prompt)
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    return result, job


async def test_show_reposts_a_job_with_working_buttons(world):
    _, job = await imagine(world, world.alice, "a paper boat")

    shown = await world.bob.slash(world.channel, "show", job_id=job.id)

    assert not shown.ephemeral
    message = world.message(shown.response.id)
    assert job.id in message.content and len(message.attachments) == 1
    assert labels(message)[0] == ["U1", "U2", "U3", "U4", "🔄"]
    await world.bob.click(message, label="V2")
    derived = await world.job_of(world.channel.last_message.id)
    assert derived.parent_id == job.id and derived.user_id == world.bob.id


async def test_show_refuses_unknown_and_hidden_jobs(world):
    _, job = await imagine(world, world.alice, "a paper boat")
    await world.services.store.set_hidden(job.id, True, world.mod.id, "off topic")

    hidden = await world.bob.slash(world.channel, "show", job_id=job.id)
    unknown = await world.bob.slash(world.channel, "show", job_id="no-such-job")

    assert hidden.ephemeral and "hidden by a moderator" in hidden.response.content
    assert unknown.ephemeral and "can't find job `no-such-job`" in unknown.response.content


async def test_show_refuses_a_job_from_another_server(world):
    _, job = await imagine(world, world.alice, "a paper boat")
    other = world.env.create_guild("Elsewhere")
    lounge = other.create_text_channel("lounge")
    stranger = other.add_member(world.env.create_user("stranger"))

    refused = await stranger.slash(lounge, "show", job_id=job.id)

    assert refused.ephemeral and f"There is no job `{job.id}` in this server." in refused.response.content
    assert lounge.last_message is None
    only_here = [(world.channel.id, world.channel.last_message.id)]
    assert await world.services.store.job_messages(job.id) == only_here


async def test_prefer_suffix_is_added_to_prompts_and_shown_in_info(world):
    set_result = await world.alice.slash(world.channel, "prefer suffix", value="--ar 16:9 --chaos 20")
    assert set_result.ephemeral and "--ar 16:9 --chaos 20" in set_result.response.content

    _, job = await imagine(world, world.alice, "a mountain road")
    info = await world.alice.slash(world.channel, "info")

    assert (
        job.prompt.startswith("a mountain road") and "--ar 16:9" in job.prompt and "--chaos 20" in job.prompt
    )
    assert job.width > job.height
    assert "`--ar 16:9 --chaos 20`" in info.response.content

    cleared = await world.alice.slash(world.channel, "prefer suffix")
    assert "cleared" in cleared.response.content
    assert (await world.services.store.user_prefs(world.alice.id)).suffix == ""


async def test_a_bad_suffix_is_refused_and_changes_nothing(world):
    await world.alice.slash(world.channel, "prefer suffix", value="--ar 3:2")
    result = await world.alice.slash(world.channel, "prefer suffix", value="--stylize 5000")
    assert result.ephemeral and "--stylize" in result.response.content
    assert (await world.services.store.user_prefs(world.alice.id)).suffix == "--ar 3:2"


async def test_repeat_starts_that_many_jobs_each_with_its_message(world):
    result = await world.alice.slash(world.channel, "imagine", prompt="a small robot --repeat 3")
    jobs = await world.services.store.user_jobs(world.alice.id)
    assert len(jobs) == 3
    for job in jobs:
        await world.settled(job.id)
    messages = [result.response.id] + [f.id for f in result.followups]
    assert len(messages) == 3
    assert {(await world.job_of(m)).id for m in messages} == {job.id for job in jobs}
    assert all(len(world.message(m).attachments) == 1 for m in messages)


async def test_many_permutations_ask_first(world):
    prompt = "a {red, blue, green} {cat, dog} --seed 1"
    asked = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    assert asked.ephemeral and "6 jobs" in asked.response.content
    assert await world.services.store.user_jobs(world.alice.id) == []

    declined = await world.alice.click(asked.response, label="No")
    assert "Nothing was started" in declined.response.content
    assert await world.services.store.user_jobs(world.alice.id) == []

    asked = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    started = await world.alice.click(asked.response, label="Yes, start 6 jobs")
    jobs = await world.services.store.user_jobs(world.alice.id)
    assert sorted(job.prompt for job in jobs) == sorted(
        f"a {colour} {animal} --seed 1" for colour in ("red", "blue", "green") for animal in ("cat", "dog")
    )
    assert len(started.followups) == 6 and not any(f.ephemeral for f in started.followups)
    for job in jobs:
        await world.settled(job.id)


async def test_permutations_in_the_suffix_count_before_asking(world):
    await world.alice.slash(world.channel, "prefer suffix", value="{watercolour, ink, charcoal}")

    asked = await world.alice.slash(world.channel, "imagine", prompt="a {cat, dog} asleep")

    assert asked.ephemeral and "6 jobs" in asked.response.content
    assert await world.services.store.user_jobs(world.alice.id) == []
    await world.alice.click(asked.response, label="Yes, start 6 jobs")
    jobs = await world.services.store.user_jobs(world.alice.id)
    assert len(jobs) == 6 and any(job.prompt == "a dog asleep ink" for job in jobs)
    for job in jobs:
        await world.settled(job.id)


async def test_permutations_of_different_image_links_are_refused(world):
    prompt = "{https://example.com/a.png, https://example.com/b.png} a cat"

    result = await world.alice.slash(world.channel, "imagine", prompt=prompt)

    assert result.ephemeral and "different images" in result.response.content
    assert await world.services.store.user_jobs(world.alice.id) == []


async def test_an_unanswered_permutation_question_expires(world):
    asked = await world.alice.slash(world.channel, "imagine", prompt="a {red, blue, green} {cat, dog}")
    await world.env.advance_time(5 * 60 + 1)
    assert "no answer in time" in asked.response.content
    assert asked.response.components == []
    assert await world.services.store.user_jobs(world.alice.id) == []


async def test_author_deletes_their_result_others_cannot(world):
    result, job = await imagine(world, world.alice, "a paper boat")
    message = world.message(result.response.id)

    refused = await world.bob.context_menu(world.channel, "Delete job", message)
    assert refused.ephemeral and "Only the author" in refused.response.content

    done = await world.alice.context_menu(world.channel, "Delete job", message)
    assert done.ephemeral
    after = world.message(result.response.id)
    assert after.content == DELETED_NOTICE and after.attachments == [] and after.components == []
    assert (await world.services.store.get_job(job.id)).deleted
    again = await world.alice.slash(world.channel, "show", job_id=job.id)
    assert again.ephemeral and "deleted by its author" in again.response.content


async def test_a_grid_too_big_for_discord_is_sent_as_jpeg_and_the_png_is_kept(world, monkeypatch):
    limit = 12_000
    monkeypatch.setattr(discord.Guild, "filesize_limit", property(lambda self: limit))
    result, job = await imagine(world, world.alice, "a paper boat")

    job = await world.services.store.get_job(job.id)
    stored = world.services.store.files.read_bytes(job.grid.path)
    assert stored.startswith(b"\x89PNG") and len(stored) > limit
    [attachment] = world.message(result.response.id).attachments
    assert attachment.filename.endswith(".jpg") and attachment.size <= limit
    sent = Image.open(io.BytesIO(await attachment.read()))
    assert sent.format == "JPEG" and sent.size == (job.grid.width, job.grid.height)


def test_fit_upload_keeps_small_pngs_and_shrinks_big_ones():
    noise = Image.effect_noise((256, 256), 64).convert("RGB")
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    png = buffer.getvalue()

    assert fit_upload(png, "grid", len(png)) == ("grid.png", png)
    name, data = fit_upload(png, "grid", len(png) // 3)
    assert name == "grid.jpg" and len(data) <= len(png) // 3
    assert Image.open(io.BytesIO(data)).size == (256, 256)


async def test_imagine_only_where_moderators_allow_it(world):
    other = world.guild.create_text_channel("images")
    await world.services.store.update_guild_settings(world.guild.id, allowed_channel_ids=[other.id])

    refused = await world.alice.slash(world.channel, "imagine", prompt="a paper boat")
    assert refused.ephemeral and f"<#{other.id}>" in refused.response.content
    assert await world.services.store.user_jobs(world.alice.id) == []

    allowed = await world.alice.slash(other, "imagine", prompt="a paper boat")
    job = await world.services.store.find_job_by_message(allowed.response.id)
    assert job is not None and job.channel_id == other.id


async def test_results_in_a_spoiler_channel_are_spoilered(world):
    await world.services.store.update_guild_settings(world.guild.id, spoiler_channel_ids=[world.channel.id])
    result, _ = await imagine(world, world.alice, "a paper boat")
    [attachment] = world.message(result.response.id).attachments
    assert attachment.is_spoiler()


def _descriptions(payload: dict, path: str = "") -> list[tuple[str, str]]:
    """(path, description) for a synced command and every subcommand and option in it."""
    here = f"{path} {payload['name']}".strip()
    found = [(here, payload.get("description", ""))]
    for option in payload.get("options", []):
        found += _descriptions(option, here)
    return found


async def test_every_command_and_option_says_what_it_is_for(world):
    # Commands describe their options in their docstring's Args section; discord.py fills a
    # missing one with "…" and cuts a long one to 100 characters ending in "…", both silently.
    tree = world.bot.tree
    commands = tree.get_commands(type=discord.AppCommandType.chat_input)
    payloads = [command.to_dict(tree) for command in commands]
    found = [entry for payload in payloads for entry in _descriptions(payload)]

    assert len(found) > 80
    unclear = [(path, text) for path, text in found if not text or text.endswith("…") or "\n" in text]
    assert unclear == []
    assert dict(found)["mod ban duration"] == "How long: 30m, 12h, 7d, 2w (empty: permanent)"
    assert dict(found)["imagine"] == "Create four images from a prompt"
