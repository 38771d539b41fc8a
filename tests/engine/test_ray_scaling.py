"""`Scaling` -> Serve deployment options, and the reachability check; no Ray needed."""

from __future__ import annotations

import socket

import pytest

from engine.api import EngineError
from engine.ray_cluster import Scaling, check_reachable


def test_a_fixed_count_and_autoscaling_become_serve_options() -> None:
    fixed = Scaling(replicas=3, resources={"sdxl_node": 1}).deployment_options(jobs_per_replica=8, gpus=1)
    assert fixed == {
        "max_ongoing_requests": 8,
        "ray_actor_options": {"num_gpus": 1, "resources": {"sdxl_node": 1}},
        "num_replicas": 3,
    }
    auto = Scaling(min_replicas=0, max_replicas=4).deployment_options(jobs_per_replica=8, gpus=0.5)
    assert "num_replicas" not in auto
    assert auto["autoscaling_config"] == {
        "min_replicas": 0,
        "initial_replicas": 1,
        "max_replicas": 4,
        "target_ongoing_requests": 4.0,
    }
    assert Scaling(max_replicas=4).most_replicas == 4 and Scaling(replicas=2).most_replicas == 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"replicas": 0}, "at least 1"),
        ({"gpus_per_replica": -1}, "negative"),
        ({"min_replicas": 3, "max_replicas": 2}, "min_replicas <= max_replicas"),
        ({"min_replicas": 1}, "only applies with max_replicas"),
    ],
)
def test_bad_scaling_says_what_is_wrong(fields, message) -> None:
    with pytest.raises(ValueError, match=message):
        Scaling(**fields)


def test_an_address_where_nothing_listens_is_named_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(EngineError, match=rf"Ray is not reachable at ray://127\.0\.0\.1:{port}"):
        check_reachable(f"ray://127.0.0.1:{port}", timeout_s=1)
    check_reachable("auto")  # left to Ray
    check_reachable(None)
