"""Submissions to the job service: an /imagine prompt becomes job rows and engine requests.

Real store, real prompt parser, real moderation; the stand-in engine answers in milliseconds so
every branch (seeds, permutations, the /prefer suffix, all-or-nothing writes, limits, refusals,
image prompts) is cheap to check. Jobs derived from a finished one (buttons, lineage, index
rules) are test_jobs_derive.py. The `env` fixture is tests/bot/conftest.py's; the helpers
(`ALICE`, `done`, `count_jobs`, `grid`) are tests/support/job_service.py's.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.core.dispatcher import LimitError
from bot.core.jobs import JobService, Requester, cell_seed
from bot.core.moderation import BannedError, BlockedError
from bot.prompt import PromptError, dimensions_for
from engine.api import ImagineRequest
from storage.models import JobStatus
from storage.queries import HistoryQuery
from tests.support.job_service import ALICE, count_jobs, done
from tests.support.stand_in_engine import INFO, solid


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
