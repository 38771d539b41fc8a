"""The dispatcher against the real SQLite store and a stand-in engine (tests/support/stand_in_engine.py).

The stand-in makes the order the engine sees exact, so fairness, limits, retries, cancels and
shutdown are checked as a user would notice them: who runs when, and what the history says.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core.dispatcher import Dispatcher, JobUpdate, LimitError, Limits
from engine.api import Failed, ImagineRequest, PromptSpec
from storage.models import JobStatus
from storage.store import Store
from tests.support.stand_in_engine import StandInEngine

USERS = {"A": 1, "B": 2, "C": 3, "Z": 9}


@pytest.fixture
async def store(tmp_path: Path):
    store = await Store.open(None, tmp_path / "data")
    yield store
    await store.close()


async def build_request(job) -> ImagineRequest:
    return ImagineRequest(job.id, PromptSpec.single(job.prompt), seeds=(1, 2, 3, 4), width=8, height=8)


async def new_job(store: Store, user: str, label: str):
    return await store.create_job(
        kind="imagine", user_id=USERS[user], user_name=user, prompt=label, width=8, height=8
    )


async def started(store, engine, limits=None) -> Dispatcher:
    dispatcher = Dispatcher(store, engine, build_request, limits or Limits())
    await dispatcher.start()
    return dispatcher


async def one_running_one_waiting(store, engine, second_user: str):
    """A's job held running in the engine (its only slot) and `second_user`'s waiting behind it."""
    dispatcher = await started(store, engine)
    running = await new_job(store, "A", "running")
    waiting = await new_job(store, second_user, "waiting")
    engine.hold.add(running.id)
    await dispatcher.submit(running)
    await dispatcher.submit(waiting)
    await engine.wait_active(running.id)
    return dispatcher, running, waiting


async def finish(dispatcher: Dispatcher) -> None:
    await asyncio.wait_for(dispatcher.wait_idle(), 10)


async def test_round_robin_across_users_matches_the_issue_vector(store):
    engine = StandInEngine()
    dispatcher = await started(store, engine)
    blocker = await new_job(store, "Z", "Z1")
    engine.hold.add(blocker.id)
    await dispatcher.submit(blocker)
    await engine.wait_active(blocker.id)

    labels = ["A1", "A2", "B1", "C1", "C2", "A3"]
    jobs = {label: await new_job(store, label[0], label) for label in labels}
    positions = {label: await dispatcher.submit(jobs[label]) for label in labels}
    # Positions at submission follow the same fair order as it grows.
    assert positions == {"A1": 1, "A2": 2, "B1": 2, "C1": 3, "C2": 5, "A3": 6}
    expected = ["A1", "B1", "C1", "A2", "C2", "A3"]
    assert [dispatcher.position(jobs[label].id) for label in expected] == [1, 2, 3, 4, 5, 6]

    engine.release(blocker.id)
    await finish(dispatcher)
    by_id = {job.id: label for label, job in jobs.items()}
    assert [by_id[job_id] for job_id in engine.seen[1:]] == expected
    for job in jobs.values():
        row = await store.get_job(job.id)
        assert row.status == JobStatus.DONE
        assert len(row.cells) == 4 and row.grid is not None
        assert store.files.absolute(row.grid.path).is_file()


async def test_queued_limit_refuses_with_the_numbers_and_changes_nothing(store):
    engine = StandInEngine()
    dispatcher = await started(store, engine, Limits(max_running_per_user=3, max_queued_per_user=2))
    first = await new_job(store, "A", "running")
    engine.hold.add(first.id)
    await dispatcher.submit(first)
    await engine.wait_active(first.id)
    for label in ("q1", "q2"):
        await dispatcher.submit(await new_job(store, "A", label))
    extra = await new_job(store, "A", "q3")
    with pytest.raises(LimitError, match=r"2 jobs waiting \(the limit is 2\)"):
        await dispatcher.submit(extra)
    assert dispatcher.queue_length() == 2
    assert dispatcher.position(extra.id) is None
    # Another user is not affected by A's limit.
    assert await dispatcher.submit(await new_job(store, "B", "b1")) == 2
    with pytest.raises(LimitError, match="would queue 3 jobs"):
        dispatcher.check_capacity(USERS["A"], 3, Limits(3, 4))
    engine.release(first.id)
    await finish(dispatcher)
    assert (await store.get_job(extra.id)).status == JobStatus.QUEUED  # never submitted, never run


async def test_running_limit_leaves_a_slot_to_other_users(store):
    engine = StandInEngine(slots_=3)
    dispatcher = await started(store, engine, Limits(max_running_per_user=1, max_queued_per_user=10))
    a_jobs = [await new_job(store, "A", f"A{i}") for i in range(3)]
    for job in a_jobs:
        engine.hold.add(job.id)
        await dispatcher.submit(job)
    await engine.wait_active(a_jobs[0].id)
    assert engine.active == {a_jobs[0].id}  # three free slots, but A may run only one
    b1 = await new_job(store, "B", "B1")
    engine.hold.add(b1.id)
    await dispatcher.submit(b1)
    await asyncio.wait_for(engine.wait_active(b1.id), 10)  # B gets a free slot while A's wait
    assert engine.seen == [a_jobs[0].id, b1.id]
    assert dispatcher.position(a_jobs[1].id) == 1
    for job in [*a_jobs, b1]:
        engine.release(job.id)
    await finish(dispatcher)
    assert engine.seen == [a_jobs[0].id, b1.id, a_jobs[1].id, a_jobs[2].id]


async def test_a_retryable_failure_is_tried_once_more(store):
    engine = StandInEngine()
    dispatcher = await started(store, engine)
    flaky = await new_job(store, "A", "flaky")
    broken = await new_job(store, "B", "broken")
    engine.failures[flaky.id] = [Failed(flaky.id, "engine process died", retryable=True)]
    engine.failures[broken.id] = [
        Failed(broken.id, "engine process died", retryable=True),
        Failed(broken.id, "engine process died again", retryable=True),
    ]
    await dispatcher.submit(flaky)
    await dispatcher.submit(broken)
    await finish(dispatcher)
    flaky_row = await store.get_job(flaky.id)
    assert flaky_row.status == JobStatus.DONE and flaky_row.attempts == 2
    broken_row = await store.get_job(broken.id)
    assert broken_row.status == JobStatus.FAILED and broken_row.attempts == 2
    assert broken_row.error == "engine process died again"
    assert engine.seen.count(flaky.id) == 2 and engine.seen.count(broken.id) == 2


async def test_a_job_lost_before_the_engine_began_it_keeps_its_retry(store):
    """Jobs waiting inside an engine process that another job took down are not charged a try."""
    engine = StandInEngine()
    dispatcher = await started(store, engine)
    bystander = await new_job(store, "A", "waited behind a crash")
    unlucky = await new_job(store, "B", "lost every time")
    engine.lost_before_start[bystander.id] = 2
    engine.lost_before_start[unlucky.id] = 10
    await dispatcher.submit(bystander)
    await dispatcher.submit(unlucky)
    await finish(dispatcher)

    row = await store.get_job(bystander.id)
    assert row.status == JobStatus.DONE and row.attempts == 1  # two losses, one real try
    assert engine.seen.count(bystander.id) == 3
    # Losses are bounded: three free requeues, then the one counted retry, then it fails.
    row = await store.get_job(unlucky.id)
    assert row.status == JobStatus.FAILED and "before this job began" in row.error
    assert engine.seen.count(unlucky.id) == 5 and row.attempts == 2


async def test_a_plain_failure_is_not_retried_and_keeps_its_reason(store):
    engine = StandInEngine()
    dispatcher = await started(store, engine)
    job = await new_job(store, "A", "too big")
    engine.failures[job.id] = [Failed(job.id, "4096x4096 is larger than this engine's 2048x2048 limit")]
    await dispatcher.submit(job)
    await finish(dispatcher)
    row = await store.get_job(job.id)
    assert row.status == JobStatus.FAILED and row.attempts == 1
    assert "larger than" in row.error


async def test_a_request_that_cannot_be_built_fails_the_job_clearly(store):
    async def refuse(job):
        raise ValueError("the source image of this job is gone")

    engine = StandInEngine()
    dispatcher = Dispatcher(store, engine, refuse, Limits())
    await dispatcher.start()
    job = await new_job(store, "A", "orphan")
    await dispatcher.submit(job)
    await finish(dispatcher)
    row = await store.get_job(job.id)
    assert row.status == JobStatus.FAILED and row.error == "the source image of this job is gone"
    assert engine.seen == []


async def test_cancel_queued_and_running_jobs(store):
    engine = StandInEngine()
    dispatcher, running, waiting = await one_running_one_waiting(store, engine, "B")
    assert await dispatcher.cancel(waiting.id) is True
    assert (await store.get_job(waiting.id)).status == JobStatus.CANCELLED
    assert await dispatcher.cancel(running.id) is True
    await finish(dispatcher)
    assert (await store.get_job(running.id)).status == JobStatus.CANCELLED
    assert waiting.id not in engine.seen
    assert await dispatcher.cancel(running.id) is False  # already over


async def test_subscribe_and_listeners_see_position_progress_and_the_end(store):
    engine = StandInEngine(steps=3)
    dispatcher = await started(store, engine)
    seen_by_listener: list[JobUpdate] = []

    async def listener(update: JobUpdate) -> None:
        seen_by_listener.append(update)

    dispatcher.add_listener(listener)
    blocker = await new_job(store, "Z", "blocker")
    engine.hold.add(blocker.id)
    await dispatcher.submit(blocker)
    job = await new_job(store, "A", "followed")
    await dispatcher.submit(job)
    stream = dispatcher.subscribe(job.id)
    engine.release(blocker.id)
    updates = [update async for update in stream]
    assert [u.status for u in updates][-1] == JobStatus.DONE
    progress = [(u.step, u.total) for u in updates if u.status == JobStatus.RUNNING and u.total]
    assert progress == [(1, 3), (2, 3), (3, 3)]
    # Done in the store before the final update goes out.
    assert (await store.get_job(job.id)).status == JobStatus.DONE
    await dispatcher.stop()
    listened = {u.job_id for u in seen_by_listener}
    assert listened == {blocker.id, job.id}
    assert next(u for u in seen_by_listener if u.job_id == job.id) == JobUpdate(job.id, "queued", position=1)
    # Subscribing after the end yields the final state from the store.
    assert [u.status async for u in dispatcher.subscribe(job.id)] == ["done"]


async def test_stop_sends_running_jobs_back_to_queued_and_the_next_start_finishes_all(store):
    engine = StandInEngine()
    dispatcher, running, waiting = await one_running_one_waiting(store, engine, "A")
    await dispatcher.stop(grace_s=0.05)
    for job in (running, waiting):
        row = await store.get_job(job.id)
        assert row.status == JobStatus.QUEUED and row.attempts == 0
    await asyncio.sleep(0.05)  # a "nothing happens" check: time for a wrongly started job to show
    assert engine.seen == [running.id]  # a stopped dispatcher starts nothing new

    engine2 = StandInEngine()
    dispatcher2 = Dispatcher(store, engine2, build_request, Limits())
    assert await dispatcher2.start() == [running.id, waiting.id]
    await finish(dispatcher2)
    assert engine2.seen == [running.id, waiting.id]
    for job in (running, waiting):
        row = await store.get_job(job.id)
        assert row.status == JobStatus.DONE and row.attempts == 1


async def test_recovery_requeues_a_job_left_running_in_original_order(store):
    first = await new_job(store, "A", "was running")
    second = await new_job(store, "B", "was queued")
    await store.mark_running(first.id)  # a previous process died mid-job
    engine = StandInEngine()
    dispatcher = Dispatcher(store, engine, build_request, Limits())
    assert await dispatcher.start(recover=lambda job: True) == [first.id, second.id]
    await finish(dispatcher)
    assert engine.seen == [first.id, second.id]
    for job in (first, second):
        assert (await store.get_job(job.id)).status == JobStatus.DONE


async def test_recovery_filter_leaves_other_front_ends_jobs_alone(store):
    mine = await store.create_job(kind="imagine", user_id=0, source="console", prompt="mine")
    theirs = await store.create_job(kind="imagine", user_id=5, source="discord", prompt="theirs")
    engine = StandInEngine()
    dispatcher = Dispatcher(store, engine, build_request, Limits())
    assert await dispatcher.start(recover=lambda job: job.source == "console") == [mine.id]
    await finish(dispatcher)
    assert (await store.get_job(theirs.id)).status == JobStatus.QUEUED


async def test_the_next_job_starts_while_the_last_ones_files_are_written(store):
    engine = StandInEngine()
    dispatcher = await started(store, engine)
    first, second = await new_job(store, "A", "first"), await new_job(store, "B", "second")
    writing = asyncio.Event()
    complete_job = store.complete_job

    async def slow_complete(job_id, **kwargs):
        if job_id == first.id:
            writing.set()
            await engine.wait_seen(second.id)  # held until the engine has the next job
        return await complete_job(job_id, **kwargs)

    store.complete_job = slow_complete
    await dispatcher.submit(first)
    await dispatcher.submit(second)
    await finish(dispatcher)
    assert writing.is_set() and engine.seen == [first.id, second.id]
    for job in (first, second):
        assert (await store.get_job(job.id)).status == JobStatus.DONE
