"""Two Ray nodes, one replica on each: both serve jobs, and each batches what waits in it.

The cluster is the run's two-node one (see conftest); a replica needs the one `imagine_slot`
each node has, as a replica needs a GPU, so Ray puts one replica on each node.
"""

from __future__ import annotations

import asyncio

import pytest

from engine.api import Finished, PromptSpec, Started
from tests.engine import conftest

pytestmark = [pytest.mark.asyncio(loop_scope="session"), pytest.mark.slow]


def replica_nodes() -> dict[int, str]:
    """pid -> node id of every live engine replica (Ray's actor table, no dashboard needed)."""
    import ray

    actors = ray._private.state.actors().values()
    return {
        int(actor["Pid"]): actor["Address"]["NodeID"]
        for actor in actors
        if actor["State"] == "ALIVE" and "EngineReplica" in actor["ActorClassName"] + actor["Name"]
    }


async def finish(engine, request, started: asyncio.Event | None = None) -> Finished:
    async for event in engine.submit(request):
        if isinstance(event, Started) and started is not None:
            started.set()
        if isinstance(event, Finished):
            return event
    raise AssertionError(f"{request.job_id} did not finish: {event!r}")


def job(job_id: str, steps: int):
    return conftest.imagine(
        job_id=job_id, prompt=PromptSpec.single("two nodes"), seeds=(1,), width=64, height=64, steps=steps
    )


async def test_one_replica_per_node_both_serve_jobs_and_each_batches_its_waiting_jobs(
    engine, ray_cluster
) -> None:
    import ray

    assert len([node for node in ray.nodes() if node["Alive"]]) == 2
    nodes = replica_nodes()
    assert len(set(nodes.values())) == 2, nodes  # one replica on each node

    # Two long jobs take both replicas' cores (Serve sends each to the less busy replica) ...
    started = [asyncio.Event(), asyncio.Event()]
    long = [asyncio.create_task(finish(engine, job(f"long-{i}", steps=25), started[i])) for i in range(2)]
    await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), 60)
    # ... so four short ones wait inside the replicas, two in each, and each pair shares a batch.
    short = await asyncio.wait_for(
        asyncio.gather(*(finish(engine, job(f"short-{i}", 2)) for i in range(4))), 60
    )
    long_done = await asyncio.gather(*long)

    pids = {int(result.timings["pid"]) for result in long_done}
    assert {nodes[pid] for pid in pids} == set(nodes.values())  # each node ran a long job
    assert all(result.timings.get("batch_jobs") == 2 for result in short), [r.timings for r in short]
