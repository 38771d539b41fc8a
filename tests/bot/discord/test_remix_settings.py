"""/settings and Remix through SimCord: the real command tree, views, modals and store."""

from __future__ import annotations

import dataclasses
import json

from tests.bot.discord.conftest import make_bot, private_answer
from tests.bot.discord.test_buttons import click, imagine


def button_labels(message) -> list[list[str]]:
    return [[child.label for child in row.children if hasattr(child, "label")] for row in message.components]


async def _settings(world, member):
    result = await member.slash(world.channel, "settings")
    assert result.ephemeral
    return result.response


async def test_settings_is_private_and_remix_toggles_after_a_restart(world, services, allowed_hosts):
    shown = await _settings(world, world.alice)
    assert "Remix: off" in shown.content
    assert ["Raw Mode", "Remix mode", "High Variation Mode", "Low Variation Mode"] in button_labels(
        shown.message
    )
    await world.env.restart_bot(make_bot(services, allowed_hosts))

    result = await world.alice.click(shown, label="Remix mode")

    assert "Remix: on" in result.response.content
    stored = await world.services.store.member_settings(world.alice.id, world.guild.id)
    assert stored.remix is True
    # Only this server: another member, and the same member elsewhere, keep the defaults.
    assert (await world.services.store.member_settings(world.bob.id, world.guild.id)).remix is False
    assert (await world.services.store.member_settings(world.alice.id, world.guild.id + 1)).remix is False


async def test_stylize_and_raw_become_prompt_defaults_that_the_prompt_overrides(world, engine):
    shown = await _settings(world, world.alice)
    result = await world.alice.select(shown, ["high"], custom_id="imagine-settings-select:stylize")
    assert "Stylize: high" in result.response.content
    await world.alice.click(result.response, label="Raw Mode")

    _, job = await imagine(world, world.alice, "a red fox in snow")
    assert job.prompt == "a red fox in snow --style raw --stylize 250"
    assert engine.requests[-1].stylize == 250 and engine.requests[-1].style == "raw"

    _, own = await imagine(world, world.alice, "a red fox in snow --stylize 100")
    assert "--stylize" not in own.prompt and own.prompt.endswith("--style raw")

    reset = await world.alice.click(result.response, label="Reset Settings")
    assert "Stylize: med" in reset.response.content and "Raw: off" in reset.response.content
    _, plain = await imagine(world, world.alice, "a red fox in snow")
    assert plain.prompt == "a red fox in snow"


async def test_low_variation_makes_v_buttons_subtle(world, engine):
    shown = await _settings(world, world.alice)
    await world.alice.click(shown, label="Low Variation Mode")
    grid, _ = await imagine(world, world.alice)
    _, varied = await click(world, world.alice, grid, "V2")
    assert varied.params["strength"] == "subtle" and engine.requests[-1].strength == "subtle"


async def test_with_remix_on_a_button_opens_the_prompt_and_the_edit_drives_the_job(world, engine):
    grid, parent = await imagine(world, world.alice, "a red fox in snow --seed 4")
    await world.alice.click(await _settings(world, world.alice), label="Remix mode")

    shown = await world.alice.click(grid, label="V1")
    assert shown.modal is not None and shown.modal["title"].startswith("Remix")
    values = [
        c.get("value")
        for row in shown.modal["components"]
        for c in row.get("components", [row.get("component", {})])
    ]
    assert parent.prompt in values
    await world.alice.submit_modal(shown, {"prompt": "a blue fox in snow --seed 4"})

    reply = world.channel.last_message
    job = await world.job_of(reply.id)
    await world.settled(job.id)
    assert job.kind == "vary" and job.parent_id == parent.id and job.prompt == "a blue fox in snow --seed 4"
    assert job.params["remix_of"] == parent.prompt
    assert engine.requests[-1].prompt.segments == (("a blue fox in snow", 1.0),)
    assert reply.reference.message_id == grid.id


async def test_a_remixed_pan_with_a_new_aspect_is_refused_in_one_private_sentence(world):
    grid, _ = await imagine(world, world.alice, "a red fox in snow --ar 2:1")
    single, _ = await click(world, world.alice, grid, "U1")
    await world.alice.click(await _settings(world, world.alice), label="Remix mode")
    before = world.channel.last_message.id
    count = len(await world.services.store.user_jobs(world.alice.id))

    shown = await world.alice.click(single, label="⬅️")
    result = await world.alice.submit_modal(shown, {"prompt": "a red fox in snow --ar 16:9"})

    assert "`--ar` does not apply to a pan" in private_answer(result)
    assert world.channel.last_message.id == before
    assert len(await world.services.store.user_jobs(world.alice.id)) == count


async def test_buttons_without_remix_start_at_once(world):
    grid, _ = await imagine(world, world.alice)
    result = await world.bob.click(grid, label="🔄")
    assert result.modal is None


async def test_saved_pngs_carry_their_parameters_and_show_prints_them(world):
    _, job = await imagine(world, world.alice, "a red fox in snow --ar 2:1 --seed 42 --no trees --chaos 20")
    store = world.services.store
    job = await store.get_job(job.id)

    for n, image in enumerate(job.cells):
        text = store.files.read_text(image.path)
        assert text["prompt"] == job.prompt
        assert text["parameters"].startswith("a red fox in snow\nNegative prompt: trees\n")
        assert f"Seed: {42 + n}, Size: {image.width}x{image.height}, Model: {job.model}" in text["parameters"]
        facts = json.loads(text["imagine"])
        assert (facts["job_id"], facts["seed"], facts["cell"]) == (job.id, 42 + n, n)
    assert json.loads(store.files.read_text(job.grid.path)["imagine"])["cell"] is None

    shown = await world.bob.slash(world.channel, "show", job_id=job.id)

    private = [message.content for message in shown.followups if message.ephemeral]
    assert private and f"Parameters of job `{job.id}`" in private[0]
    assert "Negative prompt: trees" in private[0] and "Seed: 42" in private[0]


async def test_a_separated_image_names_its_own_job_not_its_grid(world):
    grid, parent = await imagine(world, world.alice, "a red fox in snow --seed 5")
    _, single = await click(world, world.alice, grid, "U3")
    single = await world.services.store.get_job(single.id)

    text = world.services.store.files.read_text(single.cells[0].path)
    facts = json.loads(text["imagine"])
    assert (facts["job_id"], facts["parent_id"], facts["seed"]) == (single.id, parent.id, 7)
    assert f"Imagine parent: {parent.id} image 3" in text["parameters"]


async def test_settings_offers_the_installed_styles_and_the_choice_becomes_a_default(world, engine):
    services = world.services
    services.info = dataclasses.replace(services.info, loras=("ink", "neon"))
    services.jobs.info = services.info
    shown = await _settings(world, world.alice)

    result = await world.alice.select(shown, ["ink"], custom_id="imagine-settings-select:lora")

    assert "Style: ink" in result.response.content
    _, job = await imagine(world, world.alice, "a red fox in snow")
    assert job.prompt == "a red fox in snow --lora ink" and engine.requests[-1].lora.name == "ink"
    cleared = await world.alice.select(result.response, ["none"], custom_id="imagine-settings-select:lora")
    assert "Style:" not in cleared.response.content
