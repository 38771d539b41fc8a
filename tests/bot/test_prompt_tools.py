"""/shorten, /describe and /blend in the core: real store, parser, moderation and dispatcher,
with the stand-in engine (its /shorten scores a word by its length; /describe names the size)."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from bot.core.blend import BlendService
from bot.core.jobs import Action, JobError, Requester
from bot.core.moderation import BannedError
from bot.core.prompt_tools import NO_CAPTIONER, PromptTools, options, ranking, shorter_prompts
from bot.core.references import NO_ADAPTER
from bot.core.services import Services
from bot.prompt import PromptError
from bot.settings import Settings
from engine.api import BlendRequest
from storage.models import JobStatus
from storage.queries import HistoryQuery
from tests.support.stand_in_engine import StandInEngine, solid

ALICE = Requester(user_id=11, user_name="alice", guild_id=500, channel_id=600)


def tools(env, captioner: str | None = "captioner") -> PromptTools:
    _, engine, _, service = env
    return PromptTools(service, engine, captioner=captioner)


async def all_jobs(store):
    return (await store.history(HistoryQuery(limit=100))).jobs


def test_shorter_prompts_keep_the_best_words_in_their_order():
    words = ["a", "very", "red", "lighthouse", "at", "dusk"]
    scores = [0.01, 0.02, 0.5, 0.9, 0.03, 0.4]
    assert shorter_prompts(words, scores) == [
        "very red lighthouse at dusk",
        "red lighthouse at dusk",
        "red lighthouse dusk",
        "red lighthouse",
        "lighthouse",
    ]
    assert shorter_prompts(["cat"], [0.3]) == []


async def test_shorten_records_the_ranking_and_five_options_with_the_parameters(env):
    store = env[0]
    job = await tools(env).shorten(
        ALICE, "a gigantic lighthouse on the rocky island at dusk --ar 16:9 --seed 7"
    )
    assert job.kind == "shorten" and job.status == JobStatus.DONE
    assert [pair.word for pair in ranking(job)][:3] == ["lighthouse", "gigantic", "island"]
    offered = options(job)
    assert len(offered) == 5 and len(set(offered)) == 5
    assert all(option.endswith("--ar 16:9 --seed 7") for option in offered)
    assert offered[-1] == "gigantic lighthouse --ar 16:9 --seed 7"
    reread = await store.get_job(job.id)  # what a button reads after a restart
    assert options(reread) == offered


async def test_an_option_runs_as_an_imagine_job_derived_from_the_answer(env):
    store, _, dispatcher, _ = env
    answer = await tools(env).shorten(ALICE, "a gigantic lighthouse at dusk")
    [job] = await tools(env).run_option(ALICE, answer.id, 2)
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    job = await store.get_job(job.id)
    assert job.status == JobStatus.DONE and job.parent_id == answer.id
    assert job.prompt == options(answer)[1]
    lineage = await store.lineage(job.id)
    assert [a.id for a in lineage.ancestors] == [answer.id]


async def test_a_missing_option_or_a_non_answer_is_refused(env):
    _, _, dispatcher, service = env
    answer = await tools(env).shorten(ALICE, "a lighthouse at dusk")
    with pytest.raises(JobError, match="there is no prompt 6"):
        await tools(env).run_option(ALICE, answer.id, 6)
    [grid] = await service.imagine(ALICE, "a cat")
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    with pytest.raises(JobError, match="offers no prompts"):
        await tools(env).run_option(ALICE, grid.id, 1)


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("", "empty"),
        ("--ar 16:9", "no description"),
        ("a {red, blue} cat", "permutations"),
        ("a cat:: a dog::2", "::"),
        ("https://example.com/a.png a cat", "image link"),
        ("a cat --chaos 500", "chaos"),
    ],
)
async def test_prompts_shorten_cannot_read_are_refused_and_nothing_is_stored(env, prompt, expected):
    store, engine, *_ = env
    with pytest.raises(PromptError, match=expected):
        await tools(env).shorten(ALICE, prompt)
    assert await all_jobs(store) == [] and engine.requests == []


async def test_a_banned_member_cannot_shorten(env):
    store = env[0]
    await store.ban(ALICE.user_id, ALICE.guild_id, "spam", moderator_id=1)
    with pytest.raises(BannedError):
        await tools(env).shorten(ALICE, "a lighthouse at dusk")


async def test_describe_keeps_the_image_and_four_prompts(env):
    store = env[0]
    job = await tools(env).describe(ALICE, solid(80, 60))
    assert job.kind == "describe" and job.status == JobStatus.DONE
    assert options(job) == [f"picture {n} of 80x60 pixels" for n in range(1, 5)]
    assert (Path(store.files.data_dir) / job.params["image"]).is_file()


async def test_describe_without_a_captioner_says_what_to_configure(env):
    store, engine, *_ = env
    with pytest.raises(JobError) as refused:
        await tools(env, captioner=None).describe(ALICE, solid(80, 60))
    assert str(refused.value) == NO_CAPTIONER and "IMAGINE_CAPTIONER" in NO_CAPTIONER
    assert await all_jobs(store) == [] and engine.requests == []


async def test_an_engine_refusal_becomes_a_sentence_and_stores_nothing(env):
    store, engine, *_ = env
    engine.fail_with = "the captioning model found no words for this image"
    with pytest.raises(JobError, match=r"^The captioning model found no words for this image\.$"):
        await tools(env).describe(ALICE, solid(80, 60))
    assert await all_jobs(store) == []
    assert (
        not list((Path(store.files.data_dir) / "inputs").glob("*"))
        if (Path(store.files.data_dir) / "inputs").exists()
        else True
    )


# -- /blend ------------------------------------------------------------------------------------


async def test_a_blend_is_a_grid_job_with_its_sources_kept(env):
    store, engine, dispatcher, service = env
    job = await BlendService(service).blend(
        ALICE, [solid(40, 30), solid(30, 40, 200)], "portrait", "at night"
    )
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    job = await store.get_job(job.id)
    assert job.kind == "blend" and job.status == JobStatus.DONE and len(job.cells) == 4
    assert job.width < job.height  # portrait
    request = engine.requests[-1]
    assert isinstance(request, BlendRequest) and len(request.sources) == 2
    assert request.sources[0].width == 40 and request.prompt.segments == (("at night", 1.0),)
    assert job.prompt == "at night --ar 2:3"


async def test_a_blend_prompt_may_be_parameters_alone(env):
    _, engine, dispatcher, service = env
    job = await BlendService(service).blend(
        ALICE, [solid(40, 30), solid(30, 40, 200)], "landscape", "--seed 7 --q .5"
    )
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    assert job.prompt == "--ar 3:2 --quality 0.5 --seed 7" and job.seed == 7
    request = engine.requests[-1]
    assert request.prompt.segments == (("", 1.0),) and request.quality == 0.5


async def test_a_blend_rerolls_and_varies_like_any_grid(env):
    store, engine, dispatcher, service = env
    job = await BlendService(service).blend(ALICE, [solid(40, 30), solid(30, 40, 200)])
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    reroll = await service.derive(ALICE, job.id, Action.REROLL)
    vary = await service.derive(ALICE, job.id, Action.VARY, index=1)
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    reroll, vary = await store.get_job(reroll.id), await store.get_job(vary.id)
    assert reroll.kind == "blend" and reroll.parent_id == job.id and reroll.status == JobStatus.DONE
    assert reroll.seed != job.seed and isinstance(engine.requests[-2], BlendRequest)
    assert vary.status == JobStatus.DONE and vary.parent_id == job.id


@pytest.mark.parametrize(
    ("count", "dimensions", "prompt", "error", "expected"),
    [
        (1, "square", None, JobError, "at least 2 images; you gave 1"),
        (6, "square", None, JobError, "at most 5 images; you gave 6"),
        (2, "round", None, JobError, "portrait, square or landscape"),
        (2, "square", "a cat --ar 16:9", PromptError, "dimensions option"),
        (2, "square", "a {cat, dog}", PromptError, "permutations"),
        (2, "square", "a cat --stylize 5000", PromptError, "stylize"),
    ],
)
async def test_bad_blends_are_refused_and_leave_nothing(env, count, dimensions, prompt, error, expected):
    store, engine, *_ = env
    with pytest.raises(error, match=expected):
        await BlendService(env[3]).blend(ALICE, [solid(20, 20)] * count, dimensions, prompt)
    assert await all_jobs(store) == [] and engine.requests == []
    inputs = Path(store.files.data_dir) / "inputs"
    assert not inputs.exists() or not any(inputs.iterdir())


# -- --sref / --oref ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parameter", ["--sref https://example.com/style.png", "--oref https://example.com/me.png --ow 50"]
)
async def test_references_without_an_adapter_say_what_to_configure(env, parameter):
    store, engine, *_ = env
    with pytest.raises(PromptError) as refused:
        await env[3].imagine(ALICE, f"a lighthouse {parameter}")
    assert str(refused.value) == NO_ADAPTER and "IMAGINE_IP_ADAPTER" in NO_ADAPTER
    with pytest.raises(PromptError, match="IMAGINE_IP_ADAPTER"):
        await env[3].reference_urls(ALICE, f"a lighthouse {parameter}")  # before any fetch
    assert await all_jobs(store) == [] and engine.requests == []


async def test_a_weight_without_its_reference_is_refused(env):
    with pytest.raises(PromptError, match="sets how much a `--sref` picture counts"):
        await env[3].imagine(ALICE, "a lighthouse --sw 300")


@pytest.fixture
def referencing(env):
    """The job service of `env` on an engine with an IP-Adapter configured."""
    service = env[3]
    service.info = dataclasses.replace(service.info, references=True)
    return env


async def test_references_are_kept_and_reach_the_engine_also_on_a_reroll(referencing):
    store, engine, dispatcher, service = referencing
    prompt = "a lighthouse --sref https://example.com/s.png --sw 300 --oref https://example.com/o.png"
    assert await service.reference_urls(ALICE, prompt) == [
        "https://example.com/s.png",
        "https://example.com/o.png",
    ]
    pictures = {"https://example.com/s.png": solid(40, 30), "https://example.com/o.png": solid(20, 20, 9)}
    [job] = await service.imagine(ALICE, prompt, references=pictures)
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    request = engine.requests[-1]
    assert [(r.kind, r.weight, r.image.width) for r in request.references] == [
        ("style", 300.0, 40),
        ("omni", 100.0, 20),
    ]
    job = await store.get_job(job.id)
    assert (
        job.prompt
        == prompt.replace("--sref https://example.com/s.png --sw 300 ", "")
        + (" --sref https://example.com/s.png --sw 300")
        or "--sref" in job.prompt
    )
    reroll = await service.derive(ALICE, job.id, Action.REROLL)
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    assert len(engine.requests[-1].references) == 2 and engine.requests[-1].job_id == reroll.id


async def test_a_reference_that_was_not_fetched_stores_nothing(referencing):
    store, engine, *_ = referencing
    with pytest.raises(PromptError, match="was not fetched"):
        await referencing[3].imagine(ALICE, "a lighthouse --sref https://example.com/s.png", references={})
    assert await all_jobs(store) == [] and engine.requests == []
    inputs = Path(store.files.data_dir) / "inputs"
    assert not inputs.exists() or not any(inputs.iterdir())


async def test_a_blend_left_queued_by_a_stop_runs_from_its_kept_pictures_after_the_restart(tmp_path):
    settings = Settings(data_dir=tmp_path / "data", model="stand-in", device="cpu", engine="inprocess")
    held = StandInEngine()
    held.gate = asyncio.Event()  # the job waits before its first step
    first = await Services.start(settings, engine=held)
    try:
        job = await first.blends.blend(ALICE, [solid(40, 30), solid(30, 40, 200)], "square")
        await held.wait_active(job.id)
    finally:
        await first.stop(grace_s=0.0)  # the running blend goes back to queued, its store closes

    engine = StandInEngine()
    second = await Services.start(settings, engine=engine)
    try:
        await asyncio.wait_for(second.dispatcher.wait_idle(), 10)
        done = await second.store.get_job(job.id)
        assert done.status == JobStatus.DONE and len(done.cells) == 4
        [request] = engine.requests
        assert isinstance(request, BlendRequest) and [s.width for s in request.sources] == [40, 30]
    finally:
        await second.stop(grace_s=1.0)
