"""The job service on a real store and the stand-in engine, and helpers for its tests.

`job_service_env` is what tests/bot/conftest.py's `env` fixture yields: (store, engine,
dispatcher, service), the real `Store`, `Dispatcher` and `JobService` over the stand-in engine,
which answers in milliseconds. The helpers wait for jobs and make a finished grid to derive from.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bot.core.dispatcher import Dispatcher, Limits
from bot.core.jobs import JobService, Requester
from storage.queries import HistoryQuery
from storage.store import Store
from tests.support.stand_in_engine import INFO, StandInEngine

ALICE = Requester(user_id=11, user_name="alice", guild_id=500, channel_id=600)


@asynccontextmanager
async def job_service_env(
    data_dir: Path,
) -> AsyncIterator[tuple[Store, StandInEngine, Dispatcher, JobService]]:
    store = await Store.open(None, data_dir)
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
    try:
        yield store, engine, dispatcher, service
    finally:
        await dispatcher.stop()
        await store.close()


async def done(dispatcher, store, jobs):
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
    return [await store.get_job(job.id) for job in jobs]


async def count_jobs(store) -> int:
    return len((await store.history(HistoryQuery(limit=100))).jobs)


async def grid(env, prompt="a harbour --ar 16:9 --seed 3"):
    """A finished grid to derive from (Remix, Fast, derived jobs)."""
    store, _, dispatcher, service = env
    [job] = await service.imagine(ALICE, prompt)
    [job] = await done(dispatcher, store, [job])
    return job
