"""RayEngine on the run's Ray cluster: the real EngineCore (`tiny`) in Serve replicas.

The same requests and the same events as `LocalEngine`: a job end to end with its progress,
cancel, a request the core refuses, and a replica that hands back what the core made.
"""

from __future__ import annotations

import functools

import pytest

from engine.api import EngineEvent, Failed, Finished, ImagineRequest, Progress, PromptSpec, Started
from tests.engine import conftest

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]

imagine = functools.partial(
    conftest.imagine, prompt=PromptSpec.single("a lighthouse"), seeds=(1,), width=64, height=64, steps=1
)


async def run(engine, request: ImagineRequest, cancel_on_step: int | None = None) -> list[EngineEvent]:
    events: list[EngineEvent] = []
    async for event in engine.submit(request):
        events.append(event)
        if cancel_on_step is not None and isinstance(event, Progress) and event.step == cancel_on_step:
            await engine.cancel(request.job_id)
    return events


async def test_a_replica_runs_a_job_end_to_end_with_its_progress(engine) -> None:
    info = await engine.start()
    assert (info.name, info.device) == ("tiny", "cpu")
    assert engine.slots == 2 * 4  # two replicas, each twice a batch of 2 in flight

    events = await run(engine, imagine(job_id="ray-grid", steps=3, seeds=(5, 6, 7, 8)))

    assert isinstance(events[0], Started)
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3]
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.seeds == (5, 6, 7, 8)
    assert len(finished.images) == 4 and (finished.grid.width, finished.grid.height) == (128, 128)
    for key in ("worker_run_s", "transfer_s", "engine_total_s", "engine_overhead_s"):
        assert finished.timings[key] >= 0, key
    assert await engine.ping()


async def test_cancel_reaches_the_replica_and_a_bad_request_fails_alone(engine) -> None:
    events = await run(engine, imagine(job_id="ray-long", steps=150), cancel_on_step=1)
    assert events[-1] == Failed(job_id="ray-long", reason="cancelled")
    assert max(e.step for e in events if isinstance(e, Progress)) < 150

    events = await run(engine, imagine(job_id="ray-huge", width=4096, height=4096))
    assert isinstance(events[-1], Failed) and "maximum" in events[-1].reason and not events[-1].retryable

    assert isinstance((await run(engine, imagine(job_id="ray-after")))[-1], Finished)
