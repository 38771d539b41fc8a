"""Derived jobs in the job service: a button or a command on a finished job becomes a new row.

Real store, real prompt parser; the stand-in engine answers in milliseconds. U buttons (a cell
separated at once, without the engine), variations, upscales, zoom, pan and square (lineage and
the engine request each builds), quality and outpaint sizes, reroll, and the refusals (index
rules, hidden, deleted and unfinished parents). Submissions themselves are test_jobs.py; the
`env` fixture is tests/bot/conftest.py's, the helpers tests/support/job_service.py's.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.core.jobs import (
    Action,
    CellIndexError,
    JobError,
    JobHiddenError,
    JobNotDoneError,
    UnknownJobError,
    cell_seed,
)
from engine.api import OutpaintRequest, UpscaleRequest, VaryRequest
from storage.models import JobStatus
from tests.support.job_service import ALICE, done, grid


async def test_u_button_separates_a_cell_at_once_without_the_engine(env):
    store, engine, _, service = env
    parent = await grid(env)
    engine.requests.clear()
    job = await service.derive(ALICE, parent.id, Action.UPSCALE, index=1)
    assert job.status == JobStatus.DONE and job.kind == "upscale"
    assert (job.parent_id, job.parent_index) == (parent.id, 1)
    assert engine.requests == []
    [image] = job.cells
    assert image.seed == parent.cells[1].seed and job.grid is None
    # The same pixels, not re-encoded; only its text chunks now name this job (see test_png_text).
    assert (
        store.files.open_image(image.path).tobytes() == store.files.open_image(parent.cells[1].path).tobytes()
    )
    assert (
        store.files.read_text(image.path)["imagine"] != store.files.read_text(parent.cells[1].path)["imagine"]
    )


async def test_a_u_button_whose_image_cannot_be_stored_leaves_a_failed_job_not_a_running_one(env):
    store, _engine, _, service = env
    parent = await grid(env)
    # The files' temp folder is a file now (a disk-level failure): the cell's copy cannot land.
    temp = Path(store.files.tmp_dir)
    shutil.rmtree(temp, ignore_errors=True)
    temp.write_text("not a folder")
    try:
        with pytest.raises(OSError):
            await service.derive(ALICE, parent.id, Action.UPSCALE, index=1)
    finally:
        temp.unlink()
    [child] = (await store.lineage(parent.id)).descendants
    assert child.status == JobStatus.FAILED and child.error.startswith("the image could not be stored")
    assert await store.pending_jobs() == []
    # With the disk fixed, the same button works.
    job = await service.derive(ALICE, parent.id, Action.UPSCALE, index=1)
    assert job.status == JobStatus.DONE and job.cells[0].seed == parent.cells[1].seed


async def test_derived_jobs_carry_parent_and_cell_and_build_the_right_request(env):
    store, engine, dispatcher, service = env
    parent = await grid(env)
    src = parent.cells[2]
    cases = [
        (dict(action=Action.VARY, index=2), VaryRequest, "vary"),
        (dict(action=Action.VARY_SUBTLE, index=2), VaryRequest, "vary_subtle"),
        (dict(action=Action.UPSCALE_CREATIVE, index=2), UpscaleRequest, "upscale_creative"),
        (dict(action=Action.ZOOM, index=2, zoom=1.5), OutpaintRequest, "zoom"),
        (dict(action=Action.PAN, index=2, direction="left"), OutpaintRequest, "pan"),
        (dict(action=Action.SQUARE, index=2), OutpaintRequest, "square"),
    ]
    for kwargs, request_type, kind in cases:
        engine.requests.clear()
        job = await service.derive(ALICE, parent.id, **kwargs)
        [job] = await done(dispatcher, store, [job])
        assert (job.kind, job.parent_id, job.parent_index, job.status) == (kind, parent.id, 2, "done")
        [request] = engine.requests
        assert isinstance(request, request_type)
        assert (request.source.width, request.source.height) == (src.width, src.height)
    vary, subtle, up, zoom, pan, square = [r for r in (await store.lineage(parent.id)).descendants]
    assert [len(j.cells) for j in (vary, subtle, up, zoom, pan, square)] == [4, 4, 1, 4, 4, 4]
    assert up.width == 2 * src.width


async def test_request_details_for_each_action(env):
    store, engine, dispatcher, service = env
    parent = await grid(env, "a harbour --ar 2:1 --seed 3")

    async def request_for(**kwargs):
        engine.requests.clear()
        job = await service.derive(ALICE, parent.id, **kwargs)
        await done(dispatcher, store, [job])
        return engine.requests[0]

    assert (await request_for(action=Action.VARY, index=0)).strength == "strong"
    assert (await request_for(action=Action.VARY_SUBTLE, index=0)).strength == "subtle"
    assert (await request_for(action=Action.UPSCALE_SUBTLE, index=0)).mode == "subtle"
    zoom = await request_for(action=Action.ZOOM, index=0, zoom=2.0)
    assert (zoom.zoom, zoom.aspect, zoom.pan, zoom.square) == (2.0, None, None, False)
    custom = await request_for(
        action=Action.ZOOM, index=0, zoom=1.2, prompt_override="a wide harbour --ar 1:1"
    )
    assert (custom.zoom, custom.aspect) == (1.2, (1, 1))
    assert custom.prompt.segments == (("a wide harbour", 1.0),)
    assert (await request_for(action=Action.PAN, index=3, direction="up")).pan == "up"
    assert (await request_for(action=Action.SQUARE, index=0)).square is True
    assert (zoom.steps, zoom.quality) == (None, 1.0)  # the preset's steps


@pytest.mark.parametrize(
    ("action", "kwargs"),
    [
        (Action.VARY, {}),
        (Action.UPSCALE_SUBTLE, {}),
        (Action.ZOOM, {"zoom": 2.0}),
        (Action.PAN, {"direction": "left"}),
        (Action.SQUARE, {}),
    ],
)
async def test_quality_carries_over_to_derived_jobs_and_the_engine_counts_the_steps(env, action, kwargs):
    store, engine, dispatcher, service = env
    parent = await grid(env, "a harbour --ar 2:1 --seed 3 --quality .25")
    job = await service.derive(ALICE, parent.id, action, index=0, **kwargs)
    await done(dispatcher, store, [job])
    request = engine.requests[-1]
    assert (request.quality, request.steps) == (0.25, None)


@pytest.mark.parametrize(
    ("action", "kwargs"),
    [
        (Action.PAN, {"direction": "right"}),
        (Action.SQUARE, {}),
        (Action.ZOOM, {"zoom": 1.5, "prompt_override": "a wide harbour --ar 3:1"}),
    ],
)
async def test_an_outpaint_job_has_the_size_of_the_images_the_engine_made(env, action, kwargs):
    # The canvas is the engine's to plan (whole size steps, its maximum): the bot guessed it
    # before, and guessed wrong for some sources. Queued, the job has no size; done, it has
    # the size of its images, for the job and for a reroll of it.
    store, _engine, dispatcher, service = env
    parent = await grid(env, "a harbour --ar 11:8 --seed 3")
    job = await service.derive(ALICE, parent.id, action, index=0, **kwargs)
    assert (job.width, job.height) == (None, None)
    [job] = await done(dispatcher, store, [job])
    assert job.status == "done" and (job.width, job.height) == (job.cells[0].width, job.cells[0].height)
    again = await service.derive(ALICE, job.id, Action.REROLL)
    assert (again.kind, again.width, again.height) == (job.kind, None, None)


async def test_index_rules_and_clear_refusals(env):
    _store, engine, dispatcher, service = env
    parent = await grid(env)
    with pytest.raises(CellIndexError, match="is a grid of 4 images; pick one with an index 1-4"):
        await service.derive(ALICE, parent.id, Action.VARY)
    with pytest.raises(CellIndexError, match="image 5 is out of range"):
        await service.derive(ALICE, parent.id, Action.VARY, index=4)
    with pytest.raises(CellIndexError, match="reroll takes no image index"):
        await service.derive(ALICE, parent.id, Action.REROLL, index=0)
    with pytest.raises(JobError, match="pan direction must be one of left, right, up, down"):
        await service.derive(ALICE, parent.id, Action.PAN, index=0, direction="sideways")
    with pytest.raises(JobError, match=r"zoom must be a number from 1\.0 to 2\.0"):
        await service.derive(ALICE, parent.id, Action.ZOOM, index=0, zoom=3)
    single = await service.derive(ALICE, parent.id, Action.UPSCALE, index=0)
    with pytest.raises(CellIndexError, match="is a single image; leave the image index out"):
        await service.derive(ALICE, single.id, Action.VARY_SUBTLE, index=0)
    with pytest.raises(JobError, match="already a single image"):
        await service.derive(ALICE, single.id, Action.UPSCALE)
    with pytest.raises(UnknownJobError, match="there is no job 'nope'"):
        await service.derive(ALICE, "nope", Action.REROLL)
    square = await grid(env, "a tower --seed 1")
    with pytest.raises(JobError, match="is already square"):
        await service.derive(ALICE, square.id, Action.SQUARE, index=0)
    # None of the refusals queued anything.
    assert dispatcher.queue_length() == 0 and len(engine.seen) == 2


async def test_hidden_deleted_and_unfinished_parents_are_refused(env):
    store, engine, dispatcher, service = env
    parent = await grid(env)
    await store.set_hidden(parent.id, True, 1, "rules")
    with pytest.raises(JobHiddenError, match="hidden by a moderator"):
        await service.derive(ALICE, parent.id, Action.VARY, index=0)
    other = await grid(env)
    await store.update_job(other.id, deleted=True)
    with pytest.raises(JobHiddenError, match="deleted by its author"):
        await service.derive(ALICE, other.id, Action.REROLL)
    blocker = await store.create_job(kind="imagine", user_id=99, prompt="x")
    engine.hold.add(blocker.id)
    await dispatcher.submit(blocker)
    [waiting] = await service.imagine(ALICE, "later")
    with pytest.raises(JobNotDoneError, match="is still queued"):
        await service.derive(ALICE, waiting.id, Action.VARY, index=0)
    engine.release(blocker.id)


async def test_reroll_keeps_the_prompt_or_the_action_with_a_new_seed(env):
    store, _engine, dispatcher, service = env
    parent = await grid(env)
    reroll = await service.derive(ALICE, parent.id, Action.REROLL)
    [reroll] = await done(dispatcher, store, [reroll])
    assert (reroll.kind, reroll.parent_id, reroll.prompt) == ("reroll", parent.id, parent.prompt)
    assert reroll.seed != parent.seed and [i.seed for i in reroll.cells] == [
        cell_seed(reroll.seed, i) for i in range(4)
    ]
    vary = await service.derive(ALICE, parent.id, Action.VARY, index=3)
    [vary] = await done(dispatcher, store, [vary])
    again = await service.derive(ALICE, vary.id, Action.REROLL)
    [again] = await done(dispatcher, store, [again])
    assert (again.kind, again.parent_id, again.parent_index) == ("vary", parent.id, 3)
    assert again.seed != vary.seed
