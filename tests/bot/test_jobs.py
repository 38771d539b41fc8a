"""The job service: prompts and actions become job rows and engine requests.

Real store, real prompt parser, real moderation; the stand-in engine answers in milliseconds so
every branch (seeds, permutations, lineage, index rules, refusals) is cheap to check.
"""

from __future__ import annotations

import asyncio
import random
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core.dispatcher import Dispatcher, LimitError, Limits
from bot.core.jobs import (
    Action,
    CellIndexError,
    JobError,
    JobHiddenError,
    JobNotDoneError,
    JobService,
    Requester,
    UnknownJobError,
    cell_seed,
)
from bot.core.moderation import BannedError, BlockedError
from bot.prompt import PromptError, dimensions_for
from engine.api import ImagineRequest, OutpaintRequest, UpscaleRequest, VaryRequest
from storage.models import JobStatus
from storage.queries import HistoryQuery
from storage.store import Store
from tests.support.stand_in_engine import INFO, StandInEngine, solid

ALICE = Requester(user_id=11, user_name="alice", guild_id=500, channel_id=600)


@pytest.fixture
async def env(tmp_path: Path):

    store = await Store.open(None, tmp_path / "data")
    engine = StandInEngine()
    service: JobService | None = None

    async def build(job):
        return await service.build_request(job)

    dispatcher = Dispatcher(store, engine, build, Limits())
    service = JobService(
        store,
        dispatcher,
        INFO,
        model_name="tiny",
        versions={"6": "tiny", "7": "sdxl-base"},
        rng=random.Random(5),
    )
    await dispatcher.start()
    yield store, engine, dispatcher, service
    await dispatcher.stop()
    await store.close()


async def done(dispatcher, store, jobs):
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    return [await store.get_job(job.id) for job in jobs]


async def count_jobs(store) -> int:
    return len((await store.history(HistoryQuery(limit=100))).jobs)


async def test_imagine_with_a_seed_stores_per_cell_seeds_and_the_aspect_size(env):
    store, engine, dispatcher, service = env
    jobs = await service.imagine(ALICE, "a lighthouse at dusk --ar 16:9 --seed 42")
    [job] = await done(dispatcher, store, jobs)
    assert job.status == JobStatus.DONE and job.kind == "imagine"
    assert job.prompt == "a lighthouse at dusk --ar 16:9 --seed 42"
    assert (job.width, job.height) == dimensions_for((16, 9), 64, 64, 8)
    assert job.seed == 42 and [image.seed for image in job.cells] == [42, 43, 44, 45]
    assert (job.user_id, job.guild_id, job.channel_id, job.source) == (11, 500, 600, "discord")
    [request] = engine.requests
    assert isinstance(request, ImagineRequest)
    assert request.seeds == (42, 43, 44, 45) and (request.width, request.height) == (job.width, job.height)
    assert cell_seed(4294967295, 1) == 0  # wraps within 0..2**32-1


async def test_permutations_and_repeat_become_several_jobs(env):
    store, _engine, dispatcher, service = env
    jobs = await service.imagine(ALICE, "a {red, blue} bird --repeat 2 --seed 7")
    finished = await done(dispatcher, store, jobs)
    assert [(j.prompt.split(" --")[0], j.seed) for j in finished] == [
        ("a red bird", 7),
        ("a red bird", 11),
        ("a blue bird", 7),
        ("a blue bird", 11),
    ]
    assert all(j.status == JobStatus.DONE for j in finished)


async def test_without_a_seed_each_grid_gets_its_own_random_seed(env):
    store, _, dispatcher, service = env
    jobs = await service.imagine(ALICE, "fog --repeat 3")
    seeds = [j.seed for j in await done(dispatcher, store, jobs)]
    assert len(set(seeds)) == 3 and all(0 <= s < 2**32 for s in seeds)


async def test_permutations_share_a_given_seed_and_otherwise_draw_their_own(env):
    store, _, dispatcher, service = env
    shared = await done(dispatcher, store, await service.imagine(ALICE, "a {red, blue} bird --seed 9"))
    assert [j.seed for j in shared] == [9, 9]
    own = await done(dispatcher, store, await service.imagine(ALICE, "a {red, blue} bird"))
    assert own[0].seed != own[1].seed


async def test_a_failure_while_saving_the_image_prompt_writes_no_jobs(env):
    # The image prompt cannot be written (a file sits where its folder goes: a disk-level
    # failure): the submission is all or nothing, so no row is left to start by surprise after a
    # restart (before issue 13 the first row was made, then closed as `cancelled`).
    store, engine, dispatcher, service = env
    (Path(store.files.data_dir) / "inputs").write_text("not a folder")
    with pytest.raises(OSError):
        await service.imagine(
            ALICE, "https://example.com/cat.png a {red, blue} cat", init_image=solid(16, 16)
        )
    assert (await store.history(HistoryQuery(limit=10))).jobs == []
    assert await store.pending_jobs() == [] and dispatcher.queue_length() == 0 and engine.seen == []


async def _fail_the_third_insert(store) -> None:
    """A real fault in the database: a trigger that refuses a third row in the jobs table."""

    async with store.db.writer() as session, session.begin():
        await session.execute(
            text(
                "CREATE TRIGGER third_insert_fails BEFORE INSERT ON jobs "
                "WHEN (SELECT count(*) FROM jobs) >= 2 "
                "BEGIN SELECT RAISE(ABORT, 'disk full (injected)'); END"
            )
        )


@pytest.mark.parametrize("prompt", ["a {red, green, blue} bird", "a bird --repeat 4"])
async def test_a_submission_writes_all_its_jobs_or_none(env, prompt):
    store, engine, dispatcher, service = env
    await _fail_the_third_insert(store)
    with pytest.raises(Exception, match="disk full"):
        await service.imagine(ALICE, prompt)
    assert (await store.history(HistoryQuery(limit=10))).jobs == []
    assert await store.pending_jobs() == [] and dispatcher.queue_length() == 0 and engine.seen == []


async def test_an_image_prompt_submission_that_fails_leaves_no_image_behind(env):
    store, _engine, _dispatcher, service = env
    await _fail_the_third_insert(store)
    with pytest.raises(Exception, match="disk full"):
        await service.imagine(
            ALICE, "https://example.com/cat.png a {red, green, blue} cat", init_image=solid(16, 16)
        )
    assert list((Path(store.files.data_dir) / "inputs").glob("*")) == []


async def test_the_users_prefer_suffix_is_added(env):
    store, _, _dispatcher, service = env
    await store.set_user_suffix(ALICE.user_id, "--ar 2:1")
    [job] = await service.imagine(ALICE, "dunes")
    assert job.width == 2 * job.height and "--ar 2:1" in job.prompt


@pytest.mark.parametrize(
    ("typed", "expected", "ratio"),
    [
        # The prompt's own value wins, under any spelling; the suffix fills in the rest.
        ("dunes --ar 1:1", "dunes --no people --stylize 250", (1, 1)),
        ("dunes --aspect 3:2", "dunes --ar 3:2 --no people --stylize 250", (3, 2)),
        ("dunes --s 100 --no sand", "dunes --ar 2:1 --no sand, people", (2, 1)),
        (
            "dunes --c 10 --stylize 50 --no people",
            "dunes --ar 2:1 --chaos 10 --no people --stylize 50",
            (2, 1),
        ),
    ],
)
async def test_a_parameter_in_both_prompt_and_suffix_takes_the_prompts_value(env, typed, expected, ratio):
    store, _, _dispatcher, service = env
    await store.set_user_suffix(ALICE.user_id, "--ar 2:1 --no people --s 250")
    [job] = await service.imagine(ALICE, typed)
    assert job.prompt == expected and job.raw_prompt == typed
    assert (job.width, job.height) == dimensions_for(ratio, 64, 64, 8)


async def test_suffix_words_extend_the_description_and_permutations_multiply(env):
    store, _, _dispatcher, service = env
    await store.set_user_suffix(ALICE.user_id, "in fog --ar {1:1, 2:1}")
    jobs = await service.imagine(ALICE, "{red, blue} dunes --seed 3")
    assert [job.prompt for job in jobs] == [
        "red dunes in fog --seed 3",
        "red dunes in fog --ar 2:1 --seed 3",
        "blue dunes in fog --seed 3",
        "blue dunes in fog --ar 2:1 --seed 3",
    ]


async def test_too_many_permutations_with_the_suffix_are_refused_and_nothing_is_queued(env):
    store, engine, _dispatcher, service = env
    await store.set_user_suffix(ALICE.user_id, "--s {1, 2, 3, 4, 5, 6}")
    with pytest.raises(PromptError, match="prompt and your /prefer suffix make 42 prompts; the limit is 40"):
        await service.imagine(ALICE, "{a, b, c, d, e, f, g} dunes")
    assert await count_jobs(store) == 0 and engine.seen == []


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("a cat --chaos 500", "--chaos"),
        ("   ", "empty"),
        ("a cat --v 9", "--v 9 is not a version this bot knows; available: 6, 7"),
        ("a cat --v 7", "--v 7 is the model sdxl-base, but this bot runs tiny"),
        ("https://example.com/cat.png a cat", "image prompts need the image itself"),
        ("a cat --iw 2", "sets how much an image prompt counts, but this prompt has no image"),
    ],
)
async def test_a_bad_prompt_is_refused_and_nothing_is_queued(env, prompt, message):
    store, engine, _, service = env
    with pytest.raises(PromptError, match=message):
        await service.imagine(ALICE, prompt)
    assert await count_jobs(store) == 0 and engine.seen == []


@pytest.mark.parametrize("typed", ["--v turbo", "--v TURBO", "--version Turbo"])
async def test_v_picks_a_configured_version_whatever_its_case(env, typed):
    store, _engine, dispatcher, _ = env
    service = JobService(store, dispatcher, INFO, model_name="tiny", versions={"Turbo": "tiny"})
    [job] = await service.imagine(ALICE, f"a cat {typed}")
    assert job.prompt == "a cat --v turbo"
    with pytest.raises(PromptError, match="--v fast is not a version this bot knows; available: turbo"):
        await service.imagine(ALICE, "a cat --v fast")


async def test_too_many_jobs_at_once_is_refused_before_any_row_exists(env):
    store, _engine, _, service = env
    with pytest.raises(LimitError, match="would queue 12 jobs"):
        await service.imagine(ALICE, "{a,b,c,d,e,f} bird --repeat 2")
    assert await count_jobs(store) == 0
    # The console is not held to a member's queue limit.
    console = Requester(0, "operator", source="console")
    assert len(await service.imagine(console, "{a,b,c,d,e,f} bird --repeat 2")) == 12


async def test_guild_settings_override_the_limits(env):
    store, _engine, _, service = env
    await store.update_guild_settings(ALICE.guild_id, max_queued_per_user=1)
    with pytest.raises(LimitError, match="would queue 2 jobs"):
        await service.imagine(ALICE, "{a,b} bird")


async def test_banned_users_and_banned_words(env):
    store, engine, _, service = env
    await store.add_banned_word(ALICE.guild_id, "gore", False, 1)
    with pytest.raises(BlockedError):
        await service.imagine(ALICE, "a scene full of gore")
    [blocked] = (await store.history(HistoryQuery(limit=10))).jobs
    assert blocked.status == JobStatus.BLOCKED and blocked.blocked_rule == "gore"
    await store.ban(ALICE.user_id, ALICE.guild_id, "spam", 1)
    with pytest.raises(BannedError, match="spam"):
        await service.imagine(ALICE, "a calm lake")
    assert engine.seen == [] and await count_jobs(store) == 1


async def grid(env, prompt="a harbour --ar 16:9 --seed 3"):
    store, _, dispatcher, service = env
    [job] = await service.imagine(ALICE, prompt)
    [job] = await done(dispatcher, store, [job])
    return job


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


async def test_an_image_prompt_is_kept_on_disk_for_the_engine(env):
    store, engine, dispatcher, service = env
    picture = solid(16, 16, 200)
    [job] = await service.imagine(ALICE, "https://example.com/cat.png a cat --iw 1.5", init_image=picture)
    await done(dispatcher, store, [job])
    [request] = engine.requests
    assert request.init_image == picture and request.image_weight == 1.5


async def test_two_submissions_at_once_never_leave_an_untracked_queued_row(env):
    store, engine, dispatcher, service = env
    await store.update_guild_settings(ALICE.guild_id, max_queued_per_user=1)
    blocker = await store.create_job(kind="imagine", user_id=99, prompt="x")
    engine.hold.add(blocker.id)
    await dispatcher.submit(blocker)
    results = await asyncio.gather(
        service.imagine(ALICE, "one"), service.imagine(ALICE, "two"), return_exceptions=True
    )
    assert sum(isinstance(result, LimitError) for result in results) == 1
    rows = (await store.history(HistoryQuery(user_id=ALICE.user_id, limit=10))).jobs
    queued = [job for job in rows if job.status == JobStatus.QUEUED]
    assert len(queued) == 1 and dispatcher.is_tracked(queued[0].id)
    assert all(job.status in ("queued", "cancelled") for job in rows)
    engine.release(blocker.id)


async def test_the_job_runs_on_the_prompt_as_parsed_when_it_was_accepted(env):
    store, engine, dispatcher, service = env
    blocker = await store.create_job(kind="imagine", user_id=99, prompt="x")
    engine.hold.add(blocker.id)
    await dispatcher.submit(blocker)
    [job] = await service.imagine(ALICE, "a red barn --no cows,fences --chaos 20")
    # The stored text changes under the job (an edit, a parser that reads it differently later):
    # the job still runs on the prompt that was validated.
    await store.update_job(job.id, prompt="something else --chaos 90")
    engine.release(blocker.id)
    await done(dispatcher, store, [job])
    request = next(r for r in engine.requests if r.job_id == job.id)
    assert request.prompt.segments == (("a red barn", 1.0),)
    assert request.prompt.negative == ("cows", "fences") and request.chaos == 20


async def test_an_attached_image_lets_iw_through_and_the_job_keeps_it(env):
    store, engine, dispatcher, service = env
    [job] = await service.imagine(ALICE, "a cat --iw 0.5", init_image=solid(16, 16, 10))
    await done(dispatcher, store, [job])
    [request] = engine.requests
    assert request.image_weight == 0.5 and request.init_image is not None
