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
    import ray  # optional: the ray extra (the module skips without it)

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
    import ray  # optional: the ray extra (the module skips without it)

    assert len([node for node in ray.nodes() if node["Alive"]]) == 2
    nodes = replica_nodes()
    assert len(set(nodes.values())) == 2, nodes  # one replica on each node

    # As many jobs as both replicas take (Serve never sends a replica more than its
    # max_ongoing_requests), so each replica gets its share; the ones waiting behind the first
    # share batches of two.
    jobs = [job(f"both-{i}", steps=10) for i in range(engine.slots)]
    results = await asyncio.wait_for(asyncio.gather(*(finish(engine, request) for request in jobs)), 120)

    pids = {int(result.timings["pid"]) for result in results}
    assert {nodes[pid] for pid in pids} == set(nodes.values())  # both nodes served jobs
    for pid in pids:  # and each replica batched
        batched = [r.timings.get("batch_jobs") for r in results if int(r.timings["pid"]) == pid]
        assert 2.0 in batched, batched
