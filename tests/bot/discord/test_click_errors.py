"""A click that goes wrong on our side still gets an answer: the member is told, privately, and
the log names the job. A refusal the store words for members (a busy database) reaches them."""

from __future__ import annotations

import logging

from bot.discord.replies import INTERNAL_ERROR
from storage.errors import DatabaseBusyError
from tests.bot.discord.conftest import private_answer


async def finished_grid(world, prompt="a red fox in snow --seed 5"):
    result = await world.alice.slash(world.channel, "imagine", prompt=prompt)
    job = await world.job_of(result.response.id)
    await world.settled(job.id)
    return world.message(result.response.id), job


def break_derive(world, monkeypatch) -> None:
    """From now on `JobService.derive` fails with a bug (what a click must survive)."""

    async def derive(*args, **kwargs):
        raise RuntimeError("a bug in derive")

    monkeypatch.setattr(world.services.jobs, "derive", derive)


async def test_a_bug_behind_a_button_gets_a_private_internal_error(world, monkeypatch, caplog):
    grid, job = await finished_grid(world)
    break_derive(world, monkeypatch)
    before = world.channel.last_message.id

    with caplog.at_level(logging.ERROR):
        result = await world.bob.click(grid, label="V2")

    assert private_answer(result) == INTERNAL_ERROR
    assert world.channel.last_message.id == before
    assert any(job.id in record.getMessage() and record.exc_info for record in caplog.records)


async def test_a_bug_behind_the_custom_zoom_modal_gets_a_private_internal_error(world, monkeypatch, caplog):
    grid, _ = await finished_grid(world)
    await world.alice.click(grid, label="U1")
    single = world.channel.last_message
    single_job = await world.job_of(single.id)
    await world.settled(single_job.id)
    break_derive(world, monkeypatch)
    before = world.channel.last_message.id

    shown = await world.alice.click(world.message(single.id), label="Custom Zoom")
    with caplog.at_level(logging.ERROR):
        result = await world.alice.submit_modal(shown, {"zoom": "1.5", "prompt": "a red fox in snow"})

    assert private_answer(result) == INTERNAL_ERROR
    assert world.channel.last_message.id == before
    assert any(single_job.id in record.getMessage() and record.exc_info for record in caplog.records)


async def test_a_busy_database_is_explained_to_the_member(world, monkeypatch):
    grid, _ = await finished_grid(world)
    busy = "the database stayed busy for 30 s (12 attempts); please try again in a moment"

    async def derive(*args, **kwargs):
        raise DatabaseBusyError(busy)

    monkeypatch.setattr(world.services.jobs, "derive", derive)
    result = await world.bob.click(grid, label="U3")

    assert private_answer(result) == busy


async def test_a_bug_behind_a_moderator_button_gets_a_private_internal_error(world, monkeypatch, caplog):
    _, job = await finished_grid(world)
    store = world.services.store
    await store.set_hidden(job.id, True, world.mod.id, "")
    details = (await world.mod.slash(world.channel, "mod job", id=job.id)).response

    async def set_hidden(*args, **kwargs):
        raise RuntimeError("a bug in set_hidden")

    monkeypatch.setattr(store, "set_hidden", set_hidden)
    with caplog.at_level(logging.ERROR):
        result = await world.mod.click(details, label="Unhide")

    assert private_answer(result) == INTERNAL_ERROR
    assert [str(error) for error in world.env.errors] == ["a bug in set_hidden"]
    assert any(job.id in record.getMessage() and record.exc_info for record in caplog.records)


async def test_a_bug_after_confirming_many_jobs_gets_a_private_internal_error(world, monkeypatch):
    asked = await world.alice.slash(world.channel, "imagine", prompt="a {red, blue, green} {cat, dog}")

    async def imagine(*args, **kwargs):
        raise RuntimeError("a bug in imagine")

    monkeypatch.setattr(world.services.jobs, "imagine", imagine)
    result = await world.alice.click(asked.response, label="Yes, start 6 jobs")

    assert private_answer(result) == INTERNAL_ERROR
    assert [str(error) for error in world.env.errors] == ["a bug in imagine"]
