"""InProcessEngine: the EngineClient protocol over EngineCore in a worker thread."""

from __future__ import annotations

import asyncio

import pytest

from engine.api import EngineClient, EngineConfig, EngineError, Failed, Finished, Progress, Started
from engine.inprocess import InProcessEngine
from tests.engine.conftest import imagine


@pytest.fixture
async def engine():
    client = InProcessEngine(EngineConfig(model="tiny", device="cpu", warmup=False))
    yield client
    await client.close()


async def collect(client, request):
    return [event async for event in client.submit(request)]


async def test_it_is_an_engine_client_and_reports_the_model(engine):
    assert isinstance(engine, EngineClient)
    assert engine.slots == 1
    info = await engine.start()
    assert info.name == "tiny" and info.size_step == 16
    assert await engine.start() is info  # idempotent


async def test_a_job_streams_started_progress_finished(engine):
    events = await collect(engine, imagine(job_id="a", steps=3))
    assert isinstance(events[0], Started) and events[0].job_id == "a"
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3]
    assert isinstance(events[-1], Finished) and len(events[-1].images) == 4


async def test_jobs_run_one_after_another_in_order(engine):
    first, second = await asyncio.gather(
        collect(engine, imagine(job_id="one", steps=2)), collect(engine, imagine(job_id="two", steps=2))
    )
    assert isinstance(first[-1], Finished) and first[-1].job_id == "one"
    assert isinstance(second[-1], Finished) and second[-1].job_id == "two"


async def test_cancel_stops_the_job_within_a_step_and_the_next_job_runs(engine):
    events = []
    async for event in engine.submit(imagine(job_id="long", steps=50)):
        events.append(event)
        if isinstance(event, Progress) and event.step == 2:
            await engine.cancel("long")
    assert isinstance(events[-1], Failed) and events[-1].reason == "cancelled"
    assert max(e.step for e in events if isinstance(e, Progress)) <= 3
    after = await collect(engine, imagine(job_id="next", steps=1))
    assert isinstance(after[-1], Finished)


async def test_leaving_the_event_stream_early_cancels_the_job(engine):
    async for event in engine.submit(imagine(job_id="left", steps=50)):
        if isinstance(event, Progress):
            break
    after = await collect(engine, imagine(job_id="next", steps=1))
    assert isinstance(after[-1], Finished)


async def test_a_bad_request_fails_and_the_engine_stays_healthy(engine):
    events = await collect(engine, imagine(job_id="bad", width=130))
    assert isinstance(events[-1], Failed) and "multiple of 16" in events[-1].reason
    assert isinstance((await collect(engine, imagine(job_id="ok", steps=1)))[-1], Finished)


async def test_a_closed_engine_refuses_work():
    client = InProcessEngine(EngineConfig(model="tiny", device="cpu", warmup=False))
    await client.close()
    with pytest.raises(EngineError):
        await client.start()


def test_one_engine_serves_several_event_loops():
    # SimCord suites keep one engine for a module while each test gets its own event loop.
    client = InProcessEngine(EngineConfig(model="tiny", device="cpu", warmup=False))

    async def one(job_id: str):
        starts = await asyncio.gather(client.start(), client.start())
        assert starts[0] == starts[1]
        return (await collect(client, imagine(job_id=job_id, steps=1, seeds=(1,))))[-1]

    assert isinstance(asyncio.run(one("first-loop")), Finished)
    assert isinstance(asyncio.run(one("second-loop")), Finished)
    asyncio.run(client.close())
