"""RayEngine on a local one-node Ray cluster: the real EngineCore (`tiny`) in a Serve replica.

Skipped where Ray is not installed (it is the optional extra `ray`).
"""

from __future__ import annotations

import functools

import pytest
import pytest_asyncio

from engine.api import (
    EngineConfig,
    EngineEvent,
    Failed,
    Finished,
    ImagineRequest,
    Progress,
    PromptSpec,
    Started,
)
from tests.engine import conftest

# Tests on the module's Ray cluster share one event loop; they are slow (a cluster and a replica
# start) and run only where the `ray` extra is installed.
ray_test = pytest.mark.asyncio(loop_scope="module")


# A small, loopback-only cluster: no dashboard, a small object store, and the node's address
# given, so Ray never probes the network for it.
RAY_INIT = {
    "num_cpus": 2,
    "include_dashboard": False,
    "object_store_memory": 100 * 1024 * 1024,
    "_node_ip_address": "127.0.0.1",
    "log_to_driver": False,
}


imagine = functools.partial(
    conftest.imagine, prompt=PromptSpec.single("a lighthouse"), seeds=(1,), width=64, height=64, steps=1
)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine():
    pytest.importorskip("ray.serve")
    from engine.ray_serve import RayEngine

    engine = RayEngine(EngineConfig(model="tiny", device="cpu"), ray_init=RAY_INIT, app_name="imagine-test")
    await engine.start()
    yield engine
    await engine.close()


async def run(engine, request: ImagineRequest, cancel_on_step: int | None = None) -> list[EngineEvent]:
    events: list[EngineEvent] = []
    async for event in engine.submit(request):
        events.append(event)
        if cancel_on_step is not None and isinstance(event, Progress) and event.step == cancel_on_step:
            await engine.cancel(request.job_id)
    return events


@pytest.mark.slow
@ray_test
async def test_a_replica_runs_the_same_jobs_with_the_same_events(engine) -> None:
    info = await engine.start()
    assert (info.name, info.device) == ("tiny", "cpu")
    assert engine.slots == 1

    events = await run(engine, imagine(job_id="ray-grid", steps=2, seeds=(5, 6, 7, 8)))

    assert isinstance(events[0], Started)
    finished = events[-1]
    assert isinstance(finished, Finished) and finished.seeds == (5, 6, 7, 8)
    assert len(finished.images) == 4 and (finished.grid.width, finished.grid.height) == (128, 128)
    for key in ("worker_run_s", "transfer_s", "engine_total_s", "engine_overhead_s"):
        assert finished.timings[key] >= 0, key


@pytest.mark.slow
@ray_test
async def test_cancel_reaches_the_replica_and_a_bad_request_fails_alone(engine) -> None:
    events = await run(engine, imagine(job_id="ray-long", steps=150), cancel_on_step=1)
    assert events[-1] == Failed(job_id="ray-long", reason="cancelled")
    assert max(e.step for e in events if isinstance(e, Progress)) < 150

    events = await run(engine, imagine(job_id="ray-huge", width=4096, height=4096))
    assert isinstance(events[-1], Failed) and "maximum" in events[-1].reason and not events[-1].retryable

    assert isinstance((await run(engine, imagine(job_id="ray-after")))[-1], Finished)


@pytest.mark.slow
@ray_test
async def test_a_replica_killed_mid_job_fails_it_retryably_and_serve_replaces_it(engine) -> None:
    import ray

    from engine.ray_serve import REPLICA_LOST

    (replica,) = [
        ray.get_actor(actor["name"], namespace=actor["namespace"])
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if "imagine-test#EngineReplica" in actor["name"]
    ]

    events: list[EngineEvent] = []
    async for event in engine.submit(imagine(job_id="ray-killed", steps=150)):
        events.append(event)
        if isinstance(event, Progress) and event.step == 1:
            ray.kill(replica, no_restart=True)  # as a crashed process or a lost node would

    assert events[-1] == Failed(job_id="ray-killed", reason=REPLICA_LOST, retryable=True)
    # Serve starts a new replica by itself; the retry waits for it and succeeds.
    assert isinstance((await run(engine, imagine(job_id="ray-killed")))[-1], Finished)
