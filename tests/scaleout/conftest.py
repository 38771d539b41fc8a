"""One local two-node Ray cluster for every Ray test of the run, and one engine app on it.

Ray is part of the dev install, and CI sets `IMAGINE_REQUIRE_RAY=1`, so there a missing Ray is a
failure, not a skip; elsewhere (a checkout without the dev extra) these tests are skipped.

The cluster is two Ray nodes on this machine (`ray.cluster_utils.Cluster`: a head and one more
node, each its own raylet), each offering one `imagine_slot`; the engine replicas ask for one,
so Ray places one replica on each node, as it would on two GPU machines. It binds 127.0.0.2, a
loopback address Ray does not rewrite: Ray turns `127.0.0.1` into the machine's public address
before connecting, which tests must not use.
"""

from __future__ import annotations

import os

import pytest
import pytest_asyncio

from engine.api import EngineConfig
from engine.ray_serve import RayEngine, Scaling

NODE_IP = "127.0.0.2"
SLOT = "imagine_slot"
FAULTY_CORE = "tests.support.faulty_core:FaultyCore"
# Short deadlines, so the fault tests take seconds: a replica silent for 4 s is hung.
CONFIG = EngineConfig(
    model="tiny", device="cpu", warmup=False, batch_jobs=2, heartbeat_s=0.5, hang_timeout_s=4.0
)
_NODE = {
    "num_cpus": 2,
    "resources": {SLOT: 1},
    "object_store_memory": 80 * 1024 * 1024,
    "node_ip_address": NODE_IP,
}


def _import_ray():
    # Optional (the ray extra): a missing Ray skips these tests, or fails them under IMAGINE_REQUIRE_RAY.
    try:
        import ray
        from ray import serve  # noqa: F401
        from ray.cluster_utils import Cluster
    except ImportError:
        if os.environ.get("IMAGINE_REQUIRE_RAY"):
            pytest.fail("IMAGINE_REQUIRE_RAY is set but Ray Serve is not installed (pip install -e '.[dev]')")
        pytest.skip("Ray Serve is not installed (it comes with the dev extra)")
    return ray, Cluster


@pytest.fixture(scope="session")
def ray_cluster():
    """The run's Ray: two nodes, this process connected as the driver."""
    ray, Cluster = _import_ray()
    cluster = Cluster(initialize_head=True, head_node_args={**_NODE, "include_dashboard": False})
    cluster.add_node(**_NODE)
    ray.init(address=cluster.address, _node_ip_address=NODE_IP, log_to_driver=False)
    try:
        yield cluster
    finally:
        from ray import serve  # optional, as above; present once the cluster started

        serve.shutdown()
        ray.shutdown()
        cluster.shutdown()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(ray_cluster):
    """Two replicas of the faulty core (the real core unless a prompt asks for a fault)."""

    engine = RayEngine(
        CONFIG,
        scaling=Scaling(replicas=2, resources={SLOT: 1}),
        app_name="imagine-test",
        core=FAULTY_CORE,
        health_check_period_s=1.0,
        start_timeout_s=120,
    )
    await engine.start()
    yield engine
    await engine.close()
