"""The cluster side of `RayEngine`: importing Ray (optional), `Scaling` (replicas, autoscaling,
GPUs, custom resources) and the checks that fail fast with a sentence naming the address or the
missing resources. engine/ray_serve.py is the client itself.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from engine.api import EngineError

CONNECT_TIMEOUT_S = 3.0


def import_ray() -> tuple[Any, Any]:
    # Optional (the ray extra): imported by `start()` only, with a sentence when it is missing.
    try:
        import ray
        from ray import serve
    except ImportError as error:
        raise EngineError(
            "RayEngine needs Ray Serve, which is not installed: pip install 'imagine[ray]'"
        ) from error
    return ray, serve


@dataclass(frozen=True)
class Scaling:
    """How many replicas run, and what each one asks of the cluster.

    A fixed `replicas` count by default. With `max_replicas`, Serve autoscales between
    `min_replicas` and `max_replicas`, adding a replica when the jobs in flight per replica pass
    `target_ongoing_requests` (default: one batch's worth). `gpus_per_replica` None: 1 when the
    config asks for CUDA (or `auto` on a cluster with GPUs), else 0. `resources` are custom Ray
    resources each replica needs (e.g. `{"sdxl_node": 1}` to pin a model to some machines).
    """

    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None
    gpus_per_replica: float | None = None
    resources: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {self.replicas}")
        if self.gpus_per_replica is not None and self.gpus_per_replica < 0:
            raise ValueError(f"gpus_per_replica cannot be negative, got {self.gpus_per_replica}")
        low = self.min_replicas if self.min_replicas is not None else 1
        if self.max_replicas is not None and not 0 <= low <= self.max_replicas:
            raise ValueError(
                f"autoscaling needs 0 <= min_replicas <= max_replicas, got {low} and {self.max_replicas}"
            )
        if self.max_replicas is None and self.min_replicas is not None:
            raise ValueError("min_replicas only applies with max_replicas (autoscaling)")

    @property
    def most_replicas(self) -> int:
        return self.max_replicas if self.max_replicas is not None else self.replicas

    def deployment_options(self, jobs_per_replica: int, gpus: float) -> dict[str, Any]:
        """The `serve.deployment` options for these settings."""
        actor: dict[str, Any] = {"num_gpus": gpus}
        if self.resources:
            actor["resources"] = dict(self.resources)
        options: dict[str, Any] = {"max_ongoing_requests": jobs_per_replica, "ray_actor_options": actor}
        if self.max_replicas is None:
            options["num_replicas"] = self.replicas
        else:
            low = self.min_replicas if self.min_replicas is not None else 1
            options["autoscaling_config"] = {
                "min_replicas": low,
                "initial_replicas": max(low, 1),
                "max_replicas": self.max_replicas,
                "target_ongoing_requests": self.target_ongoing_requests or max(jobs_per_replica / 2, 1),
            }
        return options


def check_reachable(address: str | None, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, naming the address, when nothing listens at a `HOST:PORT` Ray address.

    `ray.init` on a dead address retries for a minute and then says little; an operator who
    mistyped IMAGINE_RAY_ADDRESS should learn that at once. `auto`, `local` and None are left to
    Ray, which answers those quickly.
    """
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as error:
        raise EngineError(
            f"Ray is not reachable at {address}: {error}. Start the head there (`ray start --head`) "
            "or fix IMAGINE_RAY_ADDRESS."
        ) from error


def describe_resources(ray: Any) -> str:
    try:
        total = ray.cluster_resources()
    except Exception:
        return "resources that could not be read"
    shown = {name: value for name, value in total.items() if name in ("CPU", "GPU") or "node:" not in name}
    return ", ".join(f"{value:g} {name}" for name, value in sorted(shown.items()) if "memory" not in name)
