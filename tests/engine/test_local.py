"""LocalEngine end to end: a really spawned worker running the real EngineCore on the `tiny` preset.

One engine serves the whole module (the model loads once); the tests that kill or freeze the
worker check that the engine comes back by itself, so the tests after them run on its successor.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import threading
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
import pytest_asyncio

from engine.api import (
    EngineConfig,
    EngineError,
    EngineEvent,
    Failed,
    Family,
    Finished,
    ImageData,
    ImagineRequest,
    Progress,
    PromptSpec,
    Started,
    VaryRequest,
)
from engine.local import CRASHED, HUNG, SHUT_DOWN, LocalEngine
from tests.engine import conftest
from tests.support.probes import until_posted

pytestmark = pytest.mark.asyncio(loop_scope="module")

# A short hang timeout keeps the frozen-worker test quick; heartbeats come every 0.25 s, so even a
# busy CI machine leaves a wide margin before a healthy worker would be mistaken for a hung one.
CONFIG = EngineConfig(model="tiny", device="cpu", heartbeat_s=0.25, hang_timeout_s=5.0)
LONG_STEPS = 150  # the core's maximum: a job that is surely still running when we act on it


imagine = functools.partial(
    conftest.imagine,
    prompt=PromptSpec.single("a lighthouse at dusk"),
    seeds=(1, 2, 3, 4),
    width=64,
    height=64,
    steps=2,
)


async def run(
    engine: LocalEngine,
    request: ImagineRequest | VaryRequest,
    on_event: Callable[[EngineEvent], Awaitable[None]] | None = None,
) -> list[EngineEvent]:
    events: list[EngineEvent] = []
    async for event in engine.submit(request):
        events.append(event)
        if on_event is not None:
            await on_event(event)
        if isinstance(event, Finished | Failed):
            break  # like a dispatcher that stops reading once it has the outcome
    return events


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine():
    engine = LocalEngine(CONFIG)
    await engine.start()
    yield engine
    await engine.close()


async def assert_healthy(engine: LocalEngine, job_id: str) -> Finished:
    """The engine still does real work: a small job runs to the end."""
    events = await run(engine, imagine(job_id=job_id))
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


async def test_start_loads_the_model_once_and_reports_it(engine: LocalEngine) -> None:
    pid = engine.worker_pid
    info = await engine.start()  # idempotent: the same worker, no second load

    assert (info.name, info.family, info.device) == ("tiny", Family.SD, "cpu")
    assert info.native_width == 128 and info.size_step == 16
    assert engine.worker_pid == pid and pid != os.getpid()
    assert engine.slots == 1


async def test_imagine_streams_progress_then_four_images_with_timings(engine: LocalEngine) -> None:
    request = imagine(job_id="grid", steps=2, seeds=(11, 12, 13, 14))

    events = await run(engine, request)

    assert isinstance(events[0], Started)
    steps = [event.step for event in events if isinstance(event, Progress)]
    assert steps == sorted(steps) and steps[-1] == 2
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.job_id == "grid"
    assert finished.seeds == (11, 12, 13, 14)
    assert [(image.width, image.height) for image in finished.images] == [(64, 64)] * 4
    assert (finished.grid.width, finished.grid.height) == (128, 128)
    assert len({image.rgb for image in finished.images}) == 4  # four seeds, four different pictures
    # What the process boundary costs is measured on every job (DESIGN: engine overhead <= 3%).
    timings = finished.timings
    for key in (
        "request_transfer_s",
        "worker_queue_s",
        "worker_run_s",
        "transfer_s",
        "engine_total_s",
        "engine_overhead_s",
    ):
        assert timings[key] >= 0, key
    assert timings["engine_total_s"] >= timings["worker_run_s"]
    # Only builtins cross the pipe: a tensor or numpy scalar here would make the bot's process
    # import torch just to unpickle an event.
    assert all(type(value) is float for value in timings.values()), timings
    previews = [event.preview for event in events if isinstance(event, Progress) and event.preview]
    assert previews and all(type(preview.rgb) is bytes for preview in previews)
    assert all(type(image.rgb) is bytes for image in (*finished.images, finished.grid))


async def test_cancel_stops_the_job_at_the_next_step_and_the_worker_carries_on(engine: LocalEngine) -> None:
    pid = engine.worker_pid
    cancelled_at: list[int] = []

    async def cancel_on_first_step(event: EngineEvent) -> None:
        if isinstance(event, Progress) and not cancelled_at:
            cancelled_at.append(event.step)
            await engine.cancel("long")

    events = await run(engine, imagine(job_id="long", steps=LONG_STEPS), cancel_on_first_step)

    assert events[-1] == Failed(job_id="long", reason="cancelled", retryable=False)
    assert not any(isinstance(event, Finished) for event in events)
    last_step = max(event.step for event in events if isinstance(event, Progress))
    # The worker may have finished a step or two while the cancel crossed the pipe; the step in
    # progress then ends and the loop stops: nowhere near the 150 asked for.
    assert last_step - cancelled_at[0] <= 3
    assert engine.worker_pid == pid  # a cancel is a message, not a kill
    await assert_healthy(engine, "after-cancel")


async def test_cancelled_job_waiting_behind_another_never_starts(engine: LocalEngine) -> None:
    first_running = asyncio.Event()

    async def note_progress(event: EngineEvent) -> None:
        if isinstance(event, Progress):
            first_running.set()

    first = asyncio.create_task(run(engine, imagine(job_id="first", steps=LONG_STEPS), note_progress))
    await first_running.wait()
    second = asyncio.create_task(run(engine, imagine(job_id="second")))
    await asyncio.wait_for(until_posted(engine, "second"), 60)  # it waits in the worker's queue
    await engine.cancel("second")
    await engine.cancel("first")

    assert await second == [Failed(job_id="second", reason="cancelled")]
    assert (await first)[-1] == Failed(job_id="first", reason="cancelled")


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        (imagine(job_id="huge", width=4096, height=4096), "maximum"),
        (
            VaryRequest(
                job_id="tiny-source",
                source=ImageData(width=4, height=4, rgb=bytes(4 * 4 * 3)),
                prompt=PromptSpec.single("a cat"),
                seeds=(1, 2, 3, 4),
            ),
            "source image",
        ),
    ],
    ids=["size-too-large", "bad-source-image"],
)
async def test_a_request_the_engine_cannot_do_fails_clearly_and_leaves_the_worker_healthy(
    engine: LocalEngine, request_: ImagineRequest | VaryRequest, words: str
) -> None:
    pid = engine.worker_pid

    events = await run(engine, request_)

    failed = events[-1]
    assert isinstance(failed, Failed) and not failed.retryable
    assert words in failed.reason
    assert not any(isinstance(event, Finished) for event in events)
    assert engine.worker_pid == pid
    await assert_healthy(engine, f"after-{request_.job_id}")


async def test_a_job_id_already_running_is_refused(engine: LocalEngine) -> None:
    running = asyncio.Event()

    async def note_progress(event: EngineEvent) -> None:
        running.set()

    first = asyncio.create_task(run(engine, imagine(job_id="twice", steps=LONG_STEPS), note_progress))
    await running.wait()
    with pytest.raises(EngineError, match="already running"):
        await run(engine, imagine(job_id="twice"))
    await engine.cancel("twice")
    assert (await first)[-1].reason == "cancelled"


async def test_a_consumer_that_goes_away_mid_job_frees_the_worker(engine: LocalEngine) -> None:
    running = asyncio.Event()

    async def note_progress(event: EngineEvent) -> None:
        running.set()

    # The longest job the core takes (150 steps at quality 2): the consumer's task is cancelled
    # after its first step, as a dispatcher's would be when it stops.
    longest = replace(imagine(job_id="abandoned", steps=LONG_STEPS), quality=2.0)
    consumer = asyncio.create_task(run(engine, longest, note_progress))
    await running.wait()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer

    # The abandoned job was cancelled in the worker, so the next one waits behind a step or two
    # of it, not behind its 300 steps (each at least as long as this whole one-step job).
    finished = await assert_healthy(engine, "after-abandoned")
    assert finished.timings["worker_queue_s"] < finished.timings["worker_run_s"] * 30


async def test_kill_9_mid_job_fails_it_retryably_and_a_fresh_worker_runs_the_next(
    engine: LocalEngine,
) -> None:
    victim = engine.worker_pid
    restarts = engine.restarts
    senders = sum(thread.name == "engine-sender" for thread in threading.enumerate())

    async def kill_on_first_step(event: EngineEvent) -> None:
        if isinstance(event, Progress) and event.step == 1:
            os.kill(victim, signal.SIGKILL)

    events = await run(engine, imagine(job_id="killed", steps=LONG_STEPS), kill_on_first_step)

    assert events[-1] == Failed(job_id="killed", reason=CRASHED, retryable=True)
    await assert_healthy(engine, "killed")  # the retry, under the same job id, right away
    assert engine.worker_pid not in (None, victim)
    assert engine.restarts == restarts + 1
    # The dead worker's sender thread (and pipe) went with it: one sender per live worker.
    for _ in range(100):
        if sum(thread.name == "engine-sender" for thread in threading.enumerate()) == senders:
            break
        await asyncio.sleep(0.05)
    assert sum(thread.name == "engine-sender" for thread in threading.enumerate()) == senders


async def test_a_frozen_worker_is_killed_and_replaced(engine: LocalEngine) -> None:
    victim = engine.worker_pid

    async def freeze_on_first_step(event: EngineEvent) -> None:
        if isinstance(event, Progress) and event.step == 1:
            os.kill(victim, signal.SIGSTOP)  # alive, but silent: no heartbeats, no progress

    events = await run(engine, imagine(job_id="frozen", steps=LONG_STEPS), freeze_on_first_step)

    assert events[-1] == Failed(job_id="frozen", reason=HUNG, retryable=True)
    assert not process_exists(victim)  # killed and reaped, not left stopped
    await assert_healthy(engine, "after-freeze")
    assert engine.worker_pid != victim


# Keep this one last: it closes the module's engine (the fixture's own close is then a no-op).
async def test_close_fails_the_running_job_and_stops_the_worker(engine: LocalEngine) -> None:
    pid = engine.worker_pid
    running = asyncio.Event()

    async def note_progress(event: EngineEvent) -> None:
        running.set()

    job = asyncio.create_task(run(engine, imagine(job_id="at-close", steps=LONG_STEPS), note_progress))
    await running.wait()
    await engine.close()

    assert (await job)[-1] == Failed(job_id="at-close", reason=SHUT_DOWN, retryable=True)
    assert not process_exists(pid)
    assert engine.worker_pid is None
    with pytest.raises(EngineError, match="closed"):
        await run(engine, imagine(job_id="after-close"))
