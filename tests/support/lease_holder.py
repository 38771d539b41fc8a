"""A process that holds jobs and never finishes them: the "other run" of the ownership tests.

    python -m tests.support.lease_holder DATA_DIR COUNT LEASE_S

Opens the store in DATA_DIR, makes COUNT console jobs owned by this process, hands them to a
real dispatcher whose stand-in engine never finishes one, prints their ids as one JSON line and
then keeps the leases alive with the dispatcher's heartbeat until it is killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.core.dispatcher import Dispatcher
from engine.api import ImagineRequest, PromptSpec
from storage.models import Job
from storage.ownership import Owner
from storage.store import Store
from tests.support.stand_in_engine import StandInEngine


async def stand_in_request(job: Job) -> ImagineRequest:
    """The smallest engine request for a job row (the stand-in engine only reads its size)."""
    return ImagineRequest(job.id, PromptSpec(((job.prompt or "x", 1.0),)), (1, 2, 3, 4), 8, 8)


async def hold(data_dir: str, count: int, lease_s: float) -> None:
    store = await Store.open(None, data_dir)
    owner = Owner(lease_s=lease_s)
    engine = StandInEngine()
    dispatcher = Dispatcher(store, engine, stand_in_request, owner=owner)
    await dispatcher.start(recover=lambda job: False)
    ids = []
    for _ in range(count):
        job = await store.create_job(
            kind="imagine", user_id=1, prompt="x", source="console", **owner.fields()
        )
        engine.hold.add(job.id)
        await dispatcher.submit(job)
        ids.append(job.id)
    print(json.dumps({"owner": owner.id, "jobs": ids}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(hold(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
