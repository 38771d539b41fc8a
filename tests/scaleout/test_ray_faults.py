"""Faults on Ray: a replica that dies mid-job, one that hangs, and a cluster that is not there.

The dying and hanging replicas are real processes of the run's cluster running `FaultyCore`,
which dies or hangs at the first step of a job whose prompt asks for it (see tests/support).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest

from bot.core.dispatcher import Dispatcher
from engine.api import EngineEvent, Failed, Finished, ImagineRequest, PromptSpec
from engine.ray_serve import REPLICA_HUNG, REPLICA_LOST
from storage.models import JobStatus
from storage.store import Store
from tests.scaleout.conftest import CONFIG
from tests.scaleout.test_ray_cluster import replica_nodes
from tests.support.faulty_core import marker

pytestmark = pytest.mark.slow
on_the_cluster = pytest.mark.asyncio(loop_scope="session")


class Recording:
    """The engine, with every event it gave the dispatcher written down."""

    def __init__(self, engine) -> None:
        self._engine = engine
        self.events: list[EngineEvent] = []

    @property
    def slots(self) -> int:
        return self._engine.slots

    async def start(self):
        return await self._engine.start()

    async def submit(self, request):
        async for event in self._engine.submit(request):
            self.events.append(event)
            yield event

    async def cancel(self, job_id: str) -> None:
        await self._engine.cancel(job_id)

    async def close(self) -> None:
        pass


def request_for(prompt: str):
    async def build(job) -> ImagineRequest:
        return ImagineRequest(
            job_id=job.id, prompt=PromptSpec.single(prompt), seeds=(1,), width=64, height=64, steps=3
        )

    return build


@on_the_cluster
async def test_a_replica_killed_mid_job_is_retried_once_on_another_and_finishes_once(
    engine, tmp_path
) -> None:
    recording = Recording(engine)
    store = await Store.open(None, tmp_path)
    dispatcher = Dispatcher(store, recording, request_for("die-once"))
    restarts = engine.restarts
    try:
        await dispatcher.start()
        job = await store.create_job(
            kind="imagine", source="console", user_id=1, user_name="ann", prompt="die-once"
        )
        updates = dispatcher.subscribe(job.id)
        await dispatcher.submit(job)
        statuses = [update.status async for update in updates]
        await asyncio.wait_for(dispatcher.wait_idle(), 60)
        stored = await store.get_job(job.id)
    finally:
        await dispatcher.stop(0)
        await store.close()

    dead_pid = int(marker(job.id).read_text())
    marker(job.id).unlink()
    assert statuses[-1] == "done" and stored.status == JobStatus.DONE, stored.error
    assert stored.attempts == 2  # the first try, lost with its replica, and the one retry
    finals = [e for e in recording.events if isinstance(e, Finished | Failed)]
    assert [type(e).__name__ for e in finals] == ["Failed", "Finished"]  # never lost, finished once
    assert finals[0].reason == REPLICA_LOST and finals[0].retryable
    assert int(finals[1].timings["pid"]) != dead_pid  # the retry ran on another replica
    assert engine.restarts == restarts + 1


@on_the_cluster
async def test_a_hung_replica_is_cancelled_at_the_deadline_and_serve_replaces_it(engine) -> None:
    before = set(replica_nodes())
    began = time.monotonic()
    events = [
        event
        async for event in engine.submit(
            ImagineRequest(
                job_id="ray-hang", prompt=PromptSpec.single("hang"), seeds=(1,), width=64, height=64, steps=3
            )
        )
    ]
    waited = time.monotonic() - began
    assert events[-1] == Failed(job_id="ray-hang", reason=REPLICA_HUNG, retryable=True)
    assert CONFIG.hang_timeout_s <= waited < CONFIG.hang_timeout_s + 10

    # Serve's health check finds the core stuck and replaces the replica; then jobs run again.
    async def replaced() -> None:
        while len(set(replica_nodes()) - before) == 0 or len(replica_nodes()) < 2:
            await asyncio.sleep(0.5)

    await asyncio.wait_for(replaced(), 90)
    request = ImagineRequest(
        job_id="ray-after-hang", prompt=PromptSpec.single("a fox"), seeds=(1,), width=64, height=64, steps=1
    )
    assert isinstance([event async for event in engine.submit(request)][-1], Finished)


def test_an_unreachable_cluster_fails_at_start_with_the_address() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    address = f"127.0.0.1:{port}"
    script = (
        "import asyncio\n"
        "from engine.ray_serve import RayEngine\n"
        f"asyncio.run(RayEngine(address={address!r}).start())\n"
    )
    began = time.monotonic()
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert f"EngineError: Ray is not reachable at {address}" in result.stderr, result.stderr[-2000:]
    assert time.monotonic() - began < 30
