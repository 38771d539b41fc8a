"""Remix in the job service: an edited prompt drives a re-roll, a variation, a zoom or a pan.

Real store and parser, the stand-in engine (the `env` fixture of tests/bot/conftest.py): what the new row
and the engine request carry, which parameters each action refuses, and that a refusal makes
nothing.
"""

from __future__ import annotations

import pytest

from bot.core.jobs import Action, JobError
from bot.prompt import PromptError, dimensions_for
from tests.support.job_service import ALICE, count_jobs, done, grid
from tests.support.stand_in_engine import INFO


async def single(env_, prompt="a red fox in snow --ar 2:1 --seed 3"):
    _, _, _, service = env_
    parent = await grid(env_, prompt)
    return await service.derive(ALICE, parent.id, Action.UPSCALE, index=0)


async def test_a_remixed_variation_runs_the_new_words_and_keeps_its_parent(env):
    store, engine, dispatcher, service = env
    parent = await grid(env, "a red fox in snow --ar 2:1 --seed 3 --stylize 300")

    job = await service.derive(
        ALICE, parent.id, Action.VARY, index=1, prompt_override="a blue fox in snow --ar 2:1 --stylize 50"
    )
    [job] = await done(dispatcher, store, [job])

    assert job.status == "done" and job.parent_id == parent.id and job.parent_index == 1
    assert job.prompt == "a blue fox in snow --ar 2:1 --stylize 50"
    assert job.params["remix_of"] == parent.prompt
    request = engine.requests[-1]
    assert request.kind == "vary" and request.prompt.segments == (("a blue fox in snow", 1.0),)
    assert request.stylize == 50 and (job.width, job.height) == (parent.width, parent.height)


async def test_a_remixed_reroll_takes_a_new_aspect_and_seed(env):
    store, engine, dispatcher, service = env
    parent = await grid(env, "a harbour --seed 3")

    job = await service.derive(
        ALICE, parent.id, Action.REROLL, prompt_override="a harbour at night --ar 2:1 --seed 9"
    )
    [job] = await done(dispatcher, store, [job])

    assert job.kind == "reroll" and job.parent_id == parent.id and job.seed == 9
    assert (job.width, job.height) == dimensions_for(
        (2, 1), INFO.native_width, INFO.native_height, INFO.size_step
    )
    assert [image.seed for image in job.cells] == [9, 10, 11, 12]
    assert engine.requests[-1].prompt.segments == (("a harbour at night", 1.0),)
    # A plain re-roll of the remix is no remix itself, and keeps the remixed prompt.
    again = await service.derive(ALICE, job.id, Action.REROLL)
    assert again.prompt == job.prompt and "remix_of" not in again.params


async def test_a_remixed_pan_and_zoom_carry_the_edited_prompt(env):
    store, engine, dispatcher, service = env
    picture = await single(env)

    pan = await service.derive(
        ALICE, picture.id, Action.PAN, direction="left", prompt_override="a red fox by a lake --ar 2:1"
    )
    zoom = await service.derive(
        ALICE, picture.id, Action.ZOOM, zoom=1.5, prompt_override="a red fox in a forest --ar 3:1"
    )
    [pan, zoom] = await done(dispatcher, store, [pan, zoom])

    assert pan.status == zoom.status == "done"
    assert pan.prompt == "a red fox by a lake --ar 2:1" and pan.params["remix_of"] == picture.prompt
    assert zoom.params["aspect"] == [3, 1]
    prompts = {request.kind + str(request.pan): request.prompt.segments for request in engine.requests[-2:]}
    assert (("a red fox by a lake", 1.0),) in prompts.values()


@pytest.mark.parametrize(
    ("action", "kwargs", "text", "expected"),
    [
        (Action.PAN, {"direction": "up"}, "a red fox --ar 16:9", "`--ar` does not apply to a pan"),
        (Action.VARY_STRONG, {}, "a red fox --ar 1:2", "`--ar` does not apply to a variation"),
        (Action.VARY_STRONG, {}, "a red fox --ar 1:1", "`--ar` does not apply to a variation"),
        (Action.VARY_SUBTLE, {}, "a red fox --chaos 40", "`--chaos` does not apply to a variation"),
        (Action.ZOOM, {"zoom": 2.0}, "a red fox --tile", "`--tile` does not apply to a zoom"),
        (Action.ZOOM, {"zoom": 2.0}, "a red fox --repeat 3", "`--repeat` does not apply to a zoom"),
        (Action.REROLL, {}, "a red fox --repeat 2", "`--repeat` does not apply to a re-roll"),
        (
            Action.REROLL,
            {},
            "a red fox --sref https://example.com/a.png",
            "`--sref` does not apply to a re-roll",
        ),
        (Action.VARY_STRONG, {}, "a red fox --bogus 1", "`--bogus` is not a parameter"),
        (Action.VARY_STRONG, {}, "   ", None),
        (Action.UPSCALE_SUBTLE, {}, "a red fox", "only a re-roll, V1-V4, Vary, Zoom Out and Pan"),
        (Action.SQUARE, {}, "a red fox", "only a re-roll, V1-V4, Vary, Zoom Out and Pan"),
        (Action.VARY_STRONG, {}, "a red fox --v 7", "--v 7 is the model sdxl-base"),
    ],
)
async def test_a_remix_the_action_cannot_honour_is_refused_and_makes_nothing(
    env, action, kwargs, text, expected
):
    store, _, _dispatcher, service = env
    picture = await single(env)
    target = picture.parent_id if action is Action.REROLL else picture.id
    before = await count_jobs(store)
    if expected is None:  # an empty edit is no edit: the job runs on the parent's prompt
        job = await service.derive(ALICE, target, action, prompt_override=text, **kwargs)
        assert job.prompt == picture.prompt and "remix_of" not in job.params
        return
    with pytest.raises((PromptError, JobError)) as error:
        await service.derive(ALICE, target, action, prompt_override=text, **kwargs)
    assert expected in str(error.value)
    assert str(error.value).count(". ") == 0 or "parameter" in str(error.value)  # one sentence
    assert await count_jobs(store) == before


async def test_keeping_or_removing_a_parameter_the_action_ignores_is_fine(env):
    store, _, dispatcher, service = env
    picture = await single(env, "a red fox --ar 2:1 --chaos 30 --seed 3")
    kept = await service.derive(
        ALICE, picture.id, Action.PAN, direction="up", prompt_override="a grey fox --ar 2:1 --chaos 30"
    )
    removed = await service.derive(ALICE, picture.id, Action.VARY_SUBTLE, prompt_override="a grey fox")
    [kept, removed] = await done(dispatcher, store, [kept, removed])
    assert kept.status == removed.status == "done"
    assert removed.prompt == "a grey fox"
