"""Scale-out: the engine core as a Ray Serve deployment, and `RayEngine`, its client.

When one GPU is not enough, the same `EngineCore` runs as Ray Serve replicas (`EngineReplica`,
one per GPU) on as many machines as the Ray cluster has. Each replica loads the model once and
batches the jobs waiting in it exactly as the local worker does. `RayEngine` is an
`EngineClient` like `LocalEngine`: the same request in, the same events out (`Started`,
`Progress`..., then `Finished` or `Failed`); the dispatcher sees as many slots as the replicas
take jobs. Cancel cancels the Serve request; the replica turns that into the core's
`should_stop`, so the job stops at its next step.

Faults end a job with a sentence, never silently: a replica that dies fails its job as
retryable (the dispatcher tries it once more, and Serve sends it to a live replica); a replica
whose stream goes silent past `hang_timeout_s` is cancelled and fails its job the same way; a
cluster that cannot be reached at start raises `EngineError` naming the address.

Ray is an optional extra (`pip install 'imagine[ray]'`). Importing this module imports neither
Ray nor torch: `RayEngine.start` imports Ray in the caller, the replica imports torch on its node.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from engine.api import (
    CANCELLED,
    EngineConfig,
    EngineError,
    EngineEvent,
    EngineRequest,
    Failed,
    Finished,
    ModelInfo,
)
from engine.batching import slots_for
from engine.local import SHUT_DOWN, client_timings
from engine.protocol import DEFAULT_CORE, Heartbeat
from engine.ray_cluster import Scaling, check_reachable, describe_resources, import_ray
from engine.ray_replica import EngineReplica
from engine.worker import NO_RESULT

log = logging.getLogger(__name__)

APP_NAME = "imagine-engine"
REPLICA_LOST = (
    "The engine replica stopped unexpectedly while working on this job; Ray Serve is replacing it, "
    "so trying again should work."
)
REPLICA_HUNG = (
    "The engine replica stopped responding while working on this job; it was cancelled and Ray Serve "
    "is replacing it, so trying again should work."
)
PING_TIMEOUT_S = 5.0


class RayEngine:
    """An `EngineClient` over a Ray Serve application of `EngineReplica`s.

    `scaling` says how many replicas run and what each needs (`Scaling`); `replicas=N` is the
    short form of `Scaling(replicas=N)`. `address` is the Ray cluster to join (None: the one in
    `RAY_ADDRESS`, or a local one started here); `ray_init` passes further options to `ray.init`.
    With `deploy=False` the client attaches to an application already running under `app_name`.
    `core` names the core class (`module:Class`) the replicas load, as for `LocalEngine`.
    `start_timeout_s` bounds the wait for the replicas to load (a cluster without the GPUs they
    ask for would otherwise wait forever); `health_check_period_s` is how often Serve asks each
    replica whether its core is stuck.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        replicas: int = 1,
        scaling: Scaling | None = None,
        address: str | None = None,
        app_name: str = APP_NAME,
        deploy: bool = True,
        ray_init: dict[str, Any] | None = None,
        core: str = DEFAULT_CORE,
        start_timeout_s: float = 900.0,
        health_check_period_s: float = 10.0,
    ) -> None:
        self._config = config or EngineConfig()
        self._scaling = scaling or Scaling(replicas=replicas)
        self._address = address
        self._app_name = app_name
        self._deploy = deploy
        self._ray_init = dict(ray_init or {})
        self._core = core
        self._start_timeout_s = start_timeout_s
        self._health_check_period_s = health_check_period_s
        self._handle: Any = None
        self._info: ModelInfo | None = None
        self._jobs_per_replica = 1
        self._starting: asyncio.Task[ModelInfo] | None = None
        self._responses: dict[str, Any] = {}
        self._owns_ray = False
        self._closed = False
        self.restarts = 0
        """How many jobs lost their replica (died or hung): each means Serve replaced one."""

    @property
    def slots(self) -> int:
        return self._scaling.most_replicas * self._jobs_per_replica

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    async def start(self) -> ModelInfo:
        """Join (or start) the Ray cluster, deploy the replicas, wait until their model is loaded."""
        if self._closed:
            raise EngineError("The engine is closed.")
        if self._info is not None:
            return self._info
        if self._starting is None or self._starting.done():
            self._starting = asyncio.get_running_loop().create_task(self._start())
        return await asyncio.shield(self._starting)

    async def _start(self) -> ModelInfo:
        ray, serve = import_ray()
        where = self._address or "the local Ray"
        if not ray.is_initialized():
            await asyncio.to_thread(check_reachable, self._address)
            try:
                await asyncio.to_thread(ray.init, address=self._address, **self._ray_init)
            except Exception as error:
                raise EngineError(f"Could not join the Ray cluster at {where}: {error}") from error
            self._owns_ray = True
        try:
            self._handle = await asyncio.wait_for(
                asyncio.to_thread(self._deploy_app if self._deploy else self._attach, ray, serve),
                self._start_timeout_s,
            )
            self._info = await asyncio.wait_for(self._handle.info.remote(), self._start_timeout_s)
        except TimeoutError:
            raise EngineError(
                f"The engine replicas did not start on {where} within {self._start_timeout_s:.0f} s; "
                f"the cluster has {describe_resources(ray)}, and each replica asks for "
                f"{self._replica_demand(ray)}"
            ) from None
        except EngineError:
            raise
        except Exception as error:
            raise EngineError(f"The engine could not start on Ray at {where}: {error}") from error
        if not self._deploy:
            self._jobs_per_replica = slots_for(self._config.jobs_per_batch(self._info.device))
        log.info(
            "engine on Ray Serve ready: %s on %s, up to %d replica(s), %d job(s) each",
            self._info.name,
            self._info.device,
            self._scaling.most_replicas,
            self._jobs_per_replica,
        )
        return self._info

    def _gpus(self, ray: Any) -> float:
        if self._scaling.gpus_per_replica is not None:
            return self._scaling.gpus_per_replica
        device = self._config.device
        if device.startswith("cuda"):
            return 1
        if device == "auto":
            return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        return 0

    def _replica_demand(self, ray: Any) -> str:
        demand = {"GPU": self._gpus(ray), **(self._scaling.resources or {})}
        return ", ".join(f"{value:g} {name}" for name, value in demand.items())

    def _deploy_app(self, ray: Any, serve: Any) -> Any:
        """Blocking: deploy the replicas and wait for them; runs in a thread."""
        gpus = self._gpus(ray)
        # Ray gives each replica its own GPU through CUDA_VISIBLE_DEVICES: inside, it is "cuda".
        device = "cuda" if self._config.device.startswith("cuda:") else self._config.device
        replica_device = "cuda" if gpus > 0 else "cpu"
        self._jobs_per_replica = slots_for(self._config.jobs_per_batch(replica_device))
        options = self._scaling.deployment_options(self._jobs_per_replica, gpus)
        deployment = serve.deployment(
            EngineReplica,
            name="EngineReplica",
            health_check_period_s=self._health_check_period_s,
            health_check_timeout_s=max(self._health_check_period_s * 3, 5.0),
            **options,
        )
        app = deployment.bind(replace(self._config, device=device), self._core)
        serve.start(proxy_location="Disabled")  # no HTTP: the bot talks through handles
        return serve.run(app, name=self._app_name, route_prefix=None)

    def _attach(self, ray: Any, serve: Any) -> Any:
        try:
            return serve.get_app_handle(self._app_name)
        except Exception as error:
            raise EngineError(
                f"No Ray Serve application {self._app_name!r} answers on {self._address or 'the local Ray'}: "
                f"{error}"
            ) from error

    async def ping(self, timeout_s: float = PING_TIMEOUT_S) -> bool:
        """True when a replica answers within `timeout_s` (the readiness check)."""
        if self._handle is None or self._closed:
            return False
        try:
            await asyncio.wait_for(self._handle.info.remote(), timeout_s)
        except Exception:
            return False
        return True

    async def submit(self, request: EngineRequest) -> AsyncIterator[EngineEvent]:
        """Run one request on some replica; yields the same events as `LocalEngine.submit`."""
        if not isinstance(request, EngineRequest):
            raise TypeError(f"not an engine request: {type(request).__name__}")
        if self._closed:
            raise EngineError("The engine is closed.")
        job_id = request.job_id
        if job_id in self._responses:
            raise EngineError(f"Job {job_id} is already running in this engine.")
        self._responses[job_id] = None  # reserved: a cancel before the request is out still counts
        final: Failed | Finished | None = None
        response: Any = None
        try:
            try:
                await self.start()
            except EngineError as error:
                final = Failed(job_id=job_id, reason=f"The engine is not available: {error}", retryable=True)
            if final is None and job_id not in self._responses:  # cancelled while the engine started
                final = Failed(job_id=job_id, reason=CANCELLED)
            if final is None:
                posted_at = time.time()
                response = self._handle.options(stream=True).run.remote(request, posted_at)
                self._responses[job_id] = response
                stream = self._follow(job_id, response, posted_at)
                async for event in stream:
                    if isinstance(event, Finished | Failed):
                        final = event
                        break
                    yield event
        finally:
            self._responses.pop(job_id, None)
            if final is None and response is not None:
                response.cancel()  # nobody listens any more: free the GPU
        yield final  # after forgetting the job, so the same job id may be submitted again at once

    async def _follow(self, job_id: str, response: Any, posted_at: float) -> AsyncIterator[EngineEvent]:
        """A replica's stream as engine events, ending with one `Finished` or `Failed`.

        Silence (not even a heartbeat) for `hang_timeout_s` means the replica or its node hangs:
        the request is cancelled and the job fails as retryable.
        """
        from ray.serve.exceptions import RequestCancelledError  # Ray is there: start() worked

        messages = aiter(response)
        try:
            while True:
                try:
                    message = await asyncio.wait_for(anext(messages), self._config.hang_timeout_s)
                except StopAsyncIteration:
                    yield Failed(job_id=job_id, reason=NO_RESULT)
                    return
                if isinstance(message, Heartbeat):
                    continue
                event = message.event
                if isinstance(event, Finished):
                    timings = client_timings(event.timings, posted_at, message.sent_at, time.time())
                    yield replace(event, timings=timings)
                    return
                yield event
                if isinstance(event, Failed):
                    return
        except TimeoutError:
            log.error(
                "job %s: no word from its replica for %.0f s; cancelling it",
                job_id,
                self._config.hang_timeout_s,
            )
            response.cancel()
            self.restarts += 1
            yield Failed(job_id=job_id, reason=SHUT_DOWN if self._closed else REPLICA_HUNG, retryable=True)
        except RequestCancelledError:
            if self._closed:
                yield Failed(job_id=job_id, reason=SHUT_DOWN, retryable=True)
            else:
                yield Failed(job_id=job_id, reason=CANCELLED)
        except Exception as error:  # the replica died, or Ray lost it
            log.error("job %s: Ray Serve request failed: %s", job_id, error)
            if not self._closed:
                self.restarts += 1
            yield Failed(job_id=job_id, reason=SHUT_DOWN if self._closed else REPLICA_LOST, retryable=True)

    async def cancel(self, job_id: str) -> None:
        """Ask the job to stop; it ends with `Failed(reason='cancelled')` within one step."""
        if job_id not in self._responses:
            return
        response = self._responses[job_id]
        if response is None:
            del self._responses[job_id]  # not sent yet: it never will be
        else:
            response.cancel()

    async def close(self) -> None:
        """Cancel what runs, remove the application this client deployed, leave Ray if it joined it."""
        if self._closed:
            return
        self._closed = True
        for response in list(self._responses.values()):
            if response is not None:
                response.cancel()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        try:
            ray, serve = import_ray()
        except EngineError:
            return
        if self._deploy and self._handle is not None:
            await asyncio.to_thread(serve.delete, self._app_name)
        if self._owns_ray:
            await asyncio.to_thread(serve.shutdown)
            await asyncio.to_thread(ray.shutdown)

    async def __aenter__(self) -> RayEngine:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
