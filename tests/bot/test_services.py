"""`Services`: started in two phases so listeners are in place before recovered jobs run.

Real store (SQLite + Alembic), real dispatcher and job service; the engine is the dispatcher
tests' stand-in, which finishes a job in a few awaits: fast enough that a listener added after
recovery would miss the whole job, which is what these tests guard against.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.core.dispatcher import JobUpdate
from bot.core.services import Services
from bot.settings import Settings
from storage.models import JobStatus
from storage.store import Store
from tests.support.stand_in_engine import StandInEngine


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model="stand-in", device="cpu")


async def left_pending(settings: Settings, *sources: str) -> list[str]:
    """Jobs a previous run left queued, one per source, oldest first."""
    store = await Store.open(settings.database_url, settings.data_dir)
    try:
        jobs = [
            await store.create_job(
                kind="imagine", source=source, user_id=7, user_name="ann", prompt=f"a {source} kite"
            )
            for source in sources
        ]
    finally:
        await store.close()
    return [job.id for job in jobs]


def recorder() -> tuple[list[JobUpdate], object]:
    seen: list[JobUpdate] = []

    async def listen(update: JobUpdate) -> None:
        seen.append(update)

    return seen, listen


async def until_done(services: Services, job_id: str) -> None:
    async def wait() -> None:
        async for _ in services.dispatcher.subscribe(job_id):  # ends with the job's final update
            pass

    await asyncio.wait_for(wait(), 10)
    await asyncio.wait_for(services.dispatcher.wait_idle(), 10)


async def test_open_runs_nothing_until_dispatching_starts_and_the_listener_sees_the_recovered_job(
    settings,
):
    [job_id] = await left_pending(settings, "discord")
    engine = StandInEngine()
    services = await Services.open(settings, engine=engine)
    try:
        await asyncio.sleep(0.05)
        assert engine.seen == []  # nothing runs before the front end is ready
        assert (await services.store.get_job(job_id)).status == JobStatus.QUEUED
        seen, listen = recorder()
        services.dispatcher.add_listener(listen)

        assert await services.start_dispatching() == [job_id]
        await until_done(services, job_id)
        await services.dispatcher.listeners_idle()  # the listener runs on its own task
        statuses = [u.status for u in seen if u.job_id == job_id]
        assert statuses[0] in ("queued", "running") and statuses[-1] == "done"
        assert "running" in statuses
    finally:
        await services.stop(grace_s=1.0)


async def test_start_with_listeners_recovers_only_what_it_is_asked_to(settings):
    console_id, discord_id = await left_pending(settings, "console", "discord")
    seen, listen = recorder()
    services = await Services.start(
        settings, engine=StandInEngine(), recover=lambda job: job.source == "discord", listeners=[listen]
    )
    try:
        await until_done(services, discord_id)
        await services.dispatcher.listeners_idle()
        assert [u.status for u in seen if u.job_id == discord_id][-1] == "done"
        assert all(u.job_id != console_id for u in seen)
        assert (await services.store.get_job(console_id)).status == JobStatus.QUEUED
    finally:
        await services.stop(grace_s=1.0)


async def test_dispatching_starts_once(settings):
    services = await Services.start(settings, engine=StandInEngine())
    try:
        with pytest.raises(RuntimeError, match="already dispatching"):
            await services.start_dispatching()
    finally:
        await services.stop(grace_s=1.0)


async def test_stopping_before_dispatching_leaves_pending_jobs_for_the_next_start(settings):
    [job_id] = await left_pending(settings, "discord")
    engine = StandInEngine()
    services = await Services.open(settings, engine=engine)
    await services.stop(grace_s=0.1)
    assert engine.seen == [] and not engine.closed  # the caller's engine: the caller closes it

    store = await Store.open(settings.database_url, settings.data_dir)
    try:
        assert [job.id for job in await store.pending_jobs()] == [job_id]
    finally:
        await store.close()
