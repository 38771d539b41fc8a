"""Every job button through SimCord: what it starts, where the result goes, who may click."""

from __future__ import annotations

import uuid

import discord
import pytest

from bot.discord.buttons import ButtonSpec, job_view
from bot.discord.render import RenderedMessage
from tests.bot.discord.conftest import attachment_image, labels

SINGLE_LABELS = [
    ["Vary (Subtle)", "Vary (Strong)"],
    ["Upscale (Subtle)", "Upscale (Creative)"],
    ["Zoom Out 2x", "Zoom Out 1.5x", "Custom Zoom", "Make Square"],
    ["⬅️", "➡️", "⬆️", "⬇️"],
]


async def imagine(world, member, prompt="a red fox in snow --seed 11"):
    result = await member.slash(world.channel, "imagine", prompt=prompt)
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    return world.message(result.response.id), job


async def click(world, member, message, label, status="done"):
    """Click a button; return the bot's new message (a reply) and its job."""
    before = world.channel.last_message.id
    result = await member.click(message, label=label)
    assert not result.ephemeral, result.followups and result.followups[0].content
    reply = world.channel.last_message
    assert reply.id != before, "the click posted nothing"
    job = await world.job_of(reply.id)
    await world.settled(job.id, status)
    return world.message(reply.id), job


async def others_are_refused(world):
    """Alice's grid in an author-only guild: Bob's click is refused privately and makes nothing."""
    grid, _ = await imagine(world, world.alice)
    before = world.channel.last_message.id
    refused = await world.bob.click(grid, label="V1")
    assert refused.ephemeral and "only the author" in refused.response.content
    assert world.channel.last_message.id == before
    assert await world.services.store.user_jobs(world.bob.id) == []
    return grid


async def test_u1_separates_a_cell_into_its_own_reply(world):
    grid, parent = await imagine(world, world.alice, "a red fox in snow --ar 3:2 --seed 11")

    single, job = await click(world, world.alice, grid, "U2")

    assert single.reference is not None and single.reference.message_id == grid.id
    assert job.kind == "upscale" and job.parent_id == parent.id and job.parent_index == 1
    assert "Image #2" in single.content
    assert labels(single) == SINGLE_LABELS  # 3:2 is not square, so Make Square is offered
    picture = await attachment_image(single.attachments[0])
    assert picture.size == (parent.width, parent.height)


async def test_square_single_image_has_no_make_square(world):
    grid, _ = await imagine(world, world.alice, "a red fox in snow")
    single, _ = await click(world, world.alice, grid, "U1")
    assert all("Make Square" not in row for row in labels(single))


async def test_reroll_and_v_buttons_start_new_grids(world, engine):
    grid, parent = await imagine(world, world.alice)

    rerolled, reroll_job = await click(world, world.alice, grid, "🔄")
    varied, vary_job = await click(world, world.alice, grid, "V3")

    assert reroll_job.kind == "reroll" and reroll_job.seed != parent.seed
    assert vary_job.kind == "vary" and vary_job.parent_index == 2
    assert engine.requests[-1].kind == "vary"
    for message in (rerolled, varied):
        assert message.reference.message_id == grid.id
        assert labels(message)[0][0] == "U1" and len(message.attachments) == 1


@pytest.mark.parametrize(
    ("label", "kind", "request_kind", "params"),
    [
        ("Vary (Subtle)", "vary_subtle", "vary", {"strength": "subtle"}),
        ("Vary (Strong)", "vary_strong", "vary", {"strength": "strong"}),
        ("Upscale (Subtle)", "upscale_subtle", "upscale", {"mode": "subtle"}),
        ("Upscale (Creative)", "upscale_creative", "upscale", {"mode": "creative"}),
        ("Zoom Out 2x", "zoom", "outpaint", {"zoom": 2.0}),
        ("Zoom Out 1.5x", "zoom", "outpaint", {"zoom": 1.5}),
        ("Make Square", "square", "outpaint", {}),
        ("⬅️", "pan", "outpaint", {"direction": "left"}),
        ("⬇️", "pan", "outpaint", {"direction": "down"}),
    ],
)
async def test_single_image_buttons(world, engine, label, kind, request_kind, params):
    grid, _ = await imagine(world, world.alice, "a red fox in snow --ar 2:1")
    single, single_job = await click(world, world.alice, grid, "U1")

    result_message, job = await click(world, world.alice, single, label)

    assert job.kind == kind and job.parent_id == single_job.id
    assert params.items() <= job.params.items()
    assert engine.requests[-1].kind == request_kind and engine.requests[-1].job_id == job.id
    assert result_message.reference.message_id == single.id
    assert len(result_message.attachments) == 1


async def test_custom_zoom_modal_takes_a_zoom_and_an_edited_prompt(world, engine):
    grid, _ = await imagine(world, world.alice, "a red fox in snow --seed 3")
    single, _ = await click(world, world.alice, grid, "U1")

    shown = await world.alice.click(single, label="Custom Zoom")
    assert shown.modal is not None
    fields = _modal_fields(shown.modal)
    assert fields["prompt"].startswith("a red fox in snow")
    await world.alice.submit_modal(shown, {"zoom": "1.25", "prompt": "a red fox in snow --ar 16:9"})

    reply = world.channel.last_message
    job = await world.job_of(reply.id)
    await world.settled(job.id)
    assert job.kind == "zoom" and job.params["zoom"] == 1.25 and job.params["aspect"] == [16, 9]
    assert engine.requests[-1].zoom == 1.25 and engine.requests[-1].aspect == (16, 9)


async def test_custom_zoom_out_of_range_is_refused(world):
    grid, _ = await imagine(world, world.alice)
    single, _ = await click(world, world.alice, grid, "U1")
    before = world.channel.last_message.id

    shown = await world.alice.click(single, label="Custom Zoom")
    result = await world.alice.submit_modal(shown, {"zoom": "3", "prompt": "a red fox in snow"})

    assert result.ephemeral and "1.0 to 2.0" in result.response.content
    assert world.channel.last_message.id == before


async def test_anyone_may_click_and_the_new_job_is_theirs(world):
    grid, _ = await imagine(world, world.alice)
    _, job = await click(world, world.bob, grid, "U1")
    assert job.user_id == world.bob.id


async def test_author_only_guild_refuses_others_but_not_moderators(world):
    await world.services.store.update_guild_settings(world.guild.id, author_only_buttons=True)
    grid = await others_are_refused(world)

    _, job = await click(world, world.mod, grid, "U4")
    assert job.user_id == world.mod.id


@pytest.mark.parametrize("state", ["hidden", "deleted", "unknown"])
async def test_click_on_a_gone_job_gets_a_clear_private_message(world, state):
    grid, job = await imagine(world, world.alice)
    store = world.services.store
    if state == "hidden":
        await store.set_hidden(job.id, True, world.mod.id, "rule 3")
        expected = "hidden by a moderator"
    elif state == "deleted":
        await store.update_job(job.id, deleted=True)
        expected = "deleted by its author"
    else:
        ghost = str(uuid.uuid4())
        view = job_view([[ButtonSpec("reroll", ghost)]])
        grid = await world.bot.messenger.send_to_channel(world.channel.id, RenderedMessage("old", view=view))
        expected = f"can't find job `{ghost}`"
    before = world.channel.last_message.id

    result = await world.bob.click(grid, label="🔄")

    assert result.ephemeral and expected in result.response.content
    assert world.channel.last_message.id == before


def _modal_fields(modal: dict) -> dict[str, str]:
    values = {}
    for row in modal["components"]:
        for component in row.get("components", [row.get("component", {})]):
            if component.get("custom_id"):
                values[component["custom_id"]] = component.get("value", "")
    return values


async def test_a_forged_button_is_refused(world):
    _, job = await imagine(world, world.alice)
    forged = job_view([[ButtonSpec("explode", job.id)]])
    forged.children[0].item.label = "Boom"
    message = await world.bot.messenger.send_to_channel(world.channel.id, RenderedMessage("x", view=forged))

    result = await world.bob.click(message, label="Boom")

    assert result.ephemeral and "not one I know" in result.response.content


async def test_without_send_messages_a_click_is_answered_through_the_interaction(world):

    quiet = world.guild.create_text_channel(
        "read-only-bot", overwrites={world.bot.user: discord.PermissionOverwrite(send_messages=False)}
    )
    result = await world.alice.slash(quiet, "imagine", prompt="a quiet pond")
    job = await world.job_of(result.response.id)
    await world.settled(job.id)

    clicked = await world.bob.click(world.message_in(quiet, result.response.id), label="U2")

    [followup] = clicked.followups
    single = await world.job_of(followup.id)
    assert single.parent_id == job.id and single.user_id == world.bob.id
    assert len(followup.attachments) == 1 and not followup.ephemeral


async def test_custom_zoom_offers_a_long_prompt_whole(world):
    words = "a red fox in deep snow under a pale winter sky, " * 60  # about 3,000 characters
    grid, _ = await imagine(world, world.alice, words.strip() + " --seed 4")
    single, job = await click(world, world.alice, grid, "U1")

    shown = await world.alice.click(single, label="Custom Zoom")

    assert shown.modal is not None
    [prompt] = [c for row in shown.modal["components"] for c in _inputs(row) if c["custom_id"] == "prompt"]
    assert prompt["value"] == job.prompt and len(job.prompt) > 1500
    assert prompt["max_length"] >= len(job.prompt)


async def test_custom_zoom_of_a_prompt_too_long_for_a_form_says_so(world):
    words = "a red fox in deep snow under a pale winter sky, " * 95  # about 4,700 characters
    grid, _ = await imagine(world, world.alice, words.strip())
    single, job = await click(world, world.alice, grid, "U1")
    before = world.channel.last_message.id

    result = await world.alice.click(single, label="Custom Zoom")

    assert result.modal is None and result.ephemeral
    assert f"prompt is {len(job.prompt):,} characters" in result.response.content
    assert "at most 4,000" in result.response.content
    assert world.channel.last_message.id == before


def _inputs(row: dict) -> list[dict]:
    return row.get("components", [row.get("component", {})])


@pytest.mark.parametrize(
    ("spec", "answer"),
    [
        (lambda job: ButtonSpec("upscale", "00000000-0000-4000-8000-000000000000", 1), "can't find job"),
        (lambda job: ButtonSpec("upscale", job.id, 9), "not one I know"),
    ],
    ids=["unknown-job", "wrong-cell"],
)
async def test_a_stale_or_forged_button_gets_a_private_sentence(world, spec, answer):
    _, job = await imagine(world, world.alice)
    forged = job_view([[spec(job)]])
    forged.children[0].item.label = "Old"
    message = await world.bot.messenger.send_to_channel(world.channel.id, RenderedMessage("x", view=forged))

    result = await world.bob.click(message, label="Old")

    assert result.ephemeral and answer in result.response.content
