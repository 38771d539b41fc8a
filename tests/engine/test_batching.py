"""Cross-job batching: imagine jobs of one size share one denoising loop and stay separate jobs.

The promise to users: a job that ran in a batch is the job they asked for. Same seed, same
picture as when it runs alone (to the last rounding: a larger UNet batch may take other kernel
paths, so a few pixels can differ by one level of 255), its own progress, its own cancel, its own
refusal, and no job overtakes another that was waiting before it.
"""

from __future__ import annotations

import asyncio

import pytest
import torch

from engine import core as engine_core
from engine.api import (
    CANCELLED,
    EngineConfig,
    EngineEvent,
    Failed,
    Finished,
    ImagineRequest,
    Progress,
    PromptSpec,
    Started,
    VaryRequest,
)
from engine.core import EngineCore
from engine.local import LocalEngine
from tests.engine.conftest import PROMPT, distance, finish, imagine, pixels
from tests.support.probes import until_posted


def assert_same_picture(done: Finished, alone: Finished) -> None:
    """Equal to the last rounding: no pixel off by more than one level, almost all exactly equal."""
    assert len(done.images) == len(alone.images)
    for a, b in [*zip(done.images, alone.images, strict=True), (done.grid, alone.grid)]:
        assert (a.width, a.height) == (b.width, b.height)
        difference = abs(pixels(a) - pixels(b))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01


# Different prompts, term counts (`::`, `--no`), step counts (`--quality`) and chaos: a batch
# mixes whatever users typed, as long as the size and tiling agree.
MIXED = [
    imagine(job_id="plain", seeds=(1, 2, 3, 4), steps=4),
    imagine(
        job_id="multi",
        prompt=PromptSpec(segments=(("a lighthouse", 2.0), ("storm", 1.0)), negative=("people",)),
        seeds=(5, 6, 7, 8),
        steps=4,
    ),
    imagine(job_id="fewer-steps", seeds=(9, 10, 11, 12), steps=4, quality=0.5),
    imagine(job_id="chaos", seeds=(13, 14, 15, 16), steps=4, chaos=60, stylize=0),
]


def run_batch(
    core: EngineCore, requests: list[ImagineRequest], stop_when=None
) -> dict[str, list[EngineEvent]]:
    events: dict[str, list[EngineEvent]] = {r.job_id: [] for r in requests}
    stop_when = stop_when or {}
    core.run_batch([(r, events[r.job_id].append, stop_when.get(r.job_id, lambda: False)) for r in requests])
    return events


def batched_like_alone(core: EngineCore, requests: list) -> dict[str, list[EngineEvent]]:
    """Run each request alone, then all as one batch; every job's batched result is its own."""
    alone = {r.job_id: finish(core, r) for r in requests}
    batched = run_batch(core, requests)
    for request in requests:
        done = batched[request.job_id][-1]
        assert isinstance(done, Finished), done
        assert done.timings["batch_jobs"] == len(requests)
        assert done.seeds == request.seeds
        assert_same_picture(done, alone[request.job_id])
    return batched


def test_a_batched_job_gives_the_same_pixels_as_the_job_alone(core: EngineCore) -> None:
    batched = batched_like_alone(core, MIXED)

    assert all(isinstance(batched[r.job_id][0], Started) for r in MIXED)
    # Each job reports its own progress, to its own step count.
    steps = {r.job_id: [e.step for e in batched[r.job_id] if isinstance(e, Progress)] for r in MIXED}
    assert steps["plain"] == [1, 2, 3, 4]
    assert steps["fewer-steps"] == [1, 2]


def test_sdxl_jobs_batch_with_their_pooled_embeddings_and_size_ids_in_line(xl_core: EngineCore) -> None:
    requests = [
        imagine(job_id="xl-plain", seeds=(1, 2, 3, 4), steps=3),
        imagine(job_id="xl-no-cfg", seeds=(5, 6, 7, 8), steps=3, guidance=1.0),  # one term, no uncond
        imagine(
            job_id="xl-multi",
            prompt=PromptSpec(segments=(("a tower", 1.0), ("fog", 0.5)), negative=("birds",)),
            seeds=(9, 10, 11, 12),
            steps=3,
        ),
    ]

    batched_like_alone(xl_core, requests)


def test_vary_jobs_batch_with_imagine_jobs_of_their_size(core: EngineCore) -> None:
    """V1-V4 and Vary Subtle/Strong are img2img loops: they share a batch with new grids."""
    source = finish(core, imagine(job_id="source", seeds=(77,), steps=4)).images[0]
    varies = [
        VaryRequest(
            job_id="v-strong", source=source, prompt=PROMPT, seeds=(1, 2, 3, 4), strength="strong", steps=8
        ),
        VaryRequest(
            job_id="v-subtle", source=source, prompt=PROMPT, seeds=(5, 6, 7, 8), strength="subtle", steps=8
        ),
    ]
    together = [MIXED[0], *varies]
    assert len({core.batch_key(r) for r in together}) == 1

    batched = batched_like_alone(core, together)

    # The strong variation moved further from its source than the subtle one, as alone.
    strong, subtle = (batched[v.job_id][-1].images[0] for v in varies)
    assert distance(strong, source) > distance(subtle, source)


def test_a_job_cancelled_in_a_batch_ends_alone_and_the_others_finish_unchanged(core: EngineCore) -> None:
    requests = MIXED[:3]
    alone = {r.job_id: finish(core, r) for r in requests}
    seen_steps: list[int] = []

    def multi_cancelled_after_two_steps() -> bool:
        return len(seen_steps) >= 2

    events: dict[str, list[EngineEvent]] = {r.job_id: [] for r in requests}

    def record_multi(event: EngineEvent) -> None:
        if isinstance(event, Progress):
            seen_steps.append(event.step)
        events["multi"].append(event)

    core.run_batch(
        [
            (requests[0], events["plain"].append, lambda: False),
            (requests[1], record_multi, multi_cancelled_after_two_steps),
            (requests[2], events["fewer-steps"].append, lambda: False),
        ]
    )

    assert events["multi"][-1] == Failed(job_id="multi", reason=CANCELLED)
    assert seen_steps == [1, 2]
    for job_id in ("plain", "fewer-steps"):
        done = events[job_id][-1]
        assert isinstance(done, Finished)
        assert_same_picture(done, alone[job_id])


def test_a_request_the_engine_refuses_fails_alone_with_its_reason(core: EngineCore) -> None:
    bad = imagine(job_id="bad", guidance=50.0, steps=4)

    events = run_batch(core, [MIXED[0], bad])

    failed = events["bad"][-1]
    assert isinstance(failed, Failed) and "guidance" in failed.reason and not failed.retryable
    assert isinstance(events["plain"][-1], Finished)


def test_a_batch_holds_at_most_its_row_budget_and_the_rest_run_next(core, monkeypatch) -> None:
    # In 128x128 cell-rows: plain costs 4 cells x 2 terms = 8, multi 4 x 4 (uncond, two
    # segments, one --no) = 16, fewer-steps 8. A budget of 24 holds plain and multi.
    monkeypatch.setattr(engine_core, "BATCH_ROW_PIXELS", 24 * 128 * 128)
    requests = MIXED[:3]

    events = run_batch(core, requests)

    shared = [events[r.job_id][-1].timings.get("batch_jobs") for r in requests]
    assert shared == [2.0, 2.0, None]  # the third job ran next, alone


def test_a_job_gets_its_outcome_when_its_own_part_ends(core: EngineCore) -> None:
    """A short job is not held back by a long one in its batch; neither is a cancel."""
    outcomes: list[str] = []
    long = imagine(job_id="long", seeds=(1, 2, 3, 4), steps=12)
    short = imagine(job_id="short", seeds=(5, 6, 7, 8), steps=3)
    cancelled = imagine(job_id="cancelled", seeds=(9, 10, 11, 12), steps=12)
    steps_of_long: list[int] = []

    def emit_for(job_id: str):
        def emit(event: EngineEvent) -> None:
            if isinstance(event, Progress) and job_id == "long":
                steps_of_long.append(event.step)
            if isinstance(event, Finished | Failed):
                outcomes.append(f"{job_id}@{len(steps_of_long)}")

        return emit

    core.run_batch(
        [
            (long, emit_for("long"), lambda: False),
            (short, emit_for("short"), lambda: False),
            (cancelled, emit_for("cancelled"), lambda: len(steps_of_long) >= 2),
        ]
    )

    # The cancel went out before step 3 of the long job, the short job's result after its 3rd.
    assert outcomes == ["cancelled@2", "short@3", "long@12"]


def test_a_batch_whose_shared_loop_fails_runs_its_jobs_one_at_a_time(core, monkeypatch) -> None:
    """A GPU's out-of-memory error, which this machine cannot produce, stood in for at the loop."""
    real = engine_core.generate_together

    def small_gpu(model, gens, deliver=None):
        if len(gens) > 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(model, gens, deliver)

    monkeypatch.setattr(engine_core, "generate_together", small_gpu)
    requests = [MIXED[0], imagine(job_id="refused", guidance=50.0), MIXED[1]]
    alone = {r.job_id: finish(core, r) for r in (MIXED[0], MIXED[1])}

    events = run_batch(core, requests)

    for job_id in ("plain", "multi"):
        done = events[job_id][-1]
        assert isinstance(done, Finished), done
        assert "batch_jobs" not in done.timings
        assert_same_picture(done, alone[job_id])
    refused = [e for e in events["refused"] if isinstance(e, Failed)]
    assert len(refused) == 1 and "guidance" in refused[0].reason  # refused once, not run again


def test_requests_of_different_sizes_are_not_batched(core: EngineCore) -> None:
    assert core.batch_key(imagine(width=128, height=64)) != core.batch_key(imagine(width=64, height=128))
    assert core.batch_key(imagine(tile=True)) != core.batch_key(imagine())
    with pytest.raises(ValueError, match="one size"):
        run_batch(core, [imagine(job_id="a"), imagine(job_id="b", width=64)])


# -- through the spawned worker --------------------------------------------------------------------


def request(job_id: str, **fields) -> ImagineRequest:
    """`imagine` with this section's defaults: 64x64, two steps, each job its own prompt."""
    prompt = PromptSpec.single(f"a lighthouse, {job_id}")
    fields = {"prompt": prompt, "seeds": (1, 2, 3, 4), "width": 64, "height": 64, "steps": 2, **fields}
    return imagine(job_id=job_id, **fields)


async def outcome(engine: LocalEngine, req: ImagineRequest, order: list[str]) -> Finished | Failed:
    async for event in engine.submit(req):
        if isinstance(event, Progress) and req.job_id == "first":
            engine.first_running.set()  # type: ignore[attr-defined]
        if isinstance(event, Progress) and req.job_id == "c":
            await engine.cancel("c")  # a user's Cancel reaching a job inside a batch
        if isinstance(event, Finished | Failed):
            order.append(req.job_id)
            return event
    raise AssertionError("the stream ended without an outcome")


@pytest.mark.asyncio
async def test_the_worker_batches_waiting_jobs_of_one_size_and_nobody_overtakes() -> None:
    config = EngineConfig(model="tiny", device="cpu", batch_jobs=4, heartbeat_s=0.25, hang_timeout_s=30.0)
    async with LocalEngine(config) as engine:
        assert engine.slots == 8  # one batch running, the next one gathering
        engine.first_running = asyncio.Event()  # type: ignore[attr-defined]
        order: list[str] = []
        # A long job keeps the worker busy while the others line up behind it.
        first = asyncio.create_task(outcome(engine, request("first", steps=150), order))
        await asyncio.wait_for(engine.first_running.wait(), 120)  # type: ignore[attr-defined]
        queued = [
            request("a"),
            request("b"),
            request("other-size", width=96, height=96),
            # Long enough that the cancel sent at c's first step crosses the pipe before c ends,
            # however loaded the machine (at 2 steps it could finish first).
            request("c", steps=30),
            request("d", steps=30),
        ]
        tasks = [asyncio.create_task(outcome(engine, r, order)) for r in queued]
        # The requests go down the pipe...
        await asyncio.wait_for(until_posted(engine, *(r.job_id for r in queued)), 60)
        await engine.cancel("first")  # ...ahead of this cancel (a pipe keeps order)
        results = dict(zip([r.job_id for r in queued], await asyncio.gather(*tasks), strict=True))
        assert await first == Failed(job_id="first", reason=CANCELLED)

    assert results["c"] == Failed(job_id="c", reason=CANCELLED)
    done = {job_id: r for job_id, r in results.items() if job_id != "c"}
    assert all(isinstance(r, Finished) for r in done.values()), done
    batch = {job_id: r.timings.get("batch_jobs") for job_id, r in done.items()}
    # a and b ran together; the 96-pixel job stopped the batch there and ran next, alone; c and d
    # (queued after it) made the next batch, where c was cancelled and d went on.
    assert batch == {"a": 2.0, "b": 2.0, "other-size": None, "d": 2.0}
    assert order.index("other-size") > max(order.index("a"), order.index("b"))
    assert order.index("other-size") < min(order.index("c"), order.index("d"))


def test_the_batch_size_follows_the_device_unless_set() -> None:
    assert EngineConfig().jobs_per_batch("cuda:0") == 4
    assert EngineConfig().jobs_per_batch("cpu") == 1
    assert EngineConfig(batch_jobs=2).jobs_per_batch("cuda") == 2
