"""Scale-out: the engine core as a Ray Serve deployment, and `RayEngine`, its client.

When one GPU is not enough, the same `EngineCore` runs as Ray Serve replicas, one per GPU, on as
many machines as the Ray cluster has. Each replica loads the model once and runs one job at a
time. `RayEngine` is an `EngineClient` like `LocalEngine`: the same request in, the same events
out (`Started`, `Progress`..., then `Finished` or `Failed`), and the dispatcher sees one slot per
replica. Cancel cancels the Serve request; the replica turns that into the core's `should_stop`,
so the job stops at its next step.

Ray is an optional extra (`pip install 'imagine[ray]'`). Importing this module imports neither
Ray nor torch: `RayEngine.start` imports Ray in the caller, the replica imports torch on its node.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
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
from engine.local import SHUT_DOWN, client_timings
from engine.protocol import JobEvent
from engine.worker import NO_RESULT, JobTimer, run_job

log = logging.getLogger(__name__)

APP_NAME = "imagine-engine"
REPLICA_LOST = (
    "The engine replica stopped unexpectedly while working on this job; Ray Serve is replacing it, "
    "so trying again should work."
)


def _import_ray() -> tuple[Any, Any]:
    try:
        import ray
        from ray import serve
    except ImportError as error:
        raise EngineError(
            "RayEngine needs Ray Serve, which is not installed: pip install 'imagine[ray]'"
        ) from error
    return ray, serve


class EngineReplica:
    """The body of one Serve replica: the core on this replica's GPU, one job at a time.

    Plain class on purpose: `RayEngine` wraps it with `serve.deployment` and its options, so this
    module stays importable without Ray.
    """

    def __init__(self, config: EngineConfig) -> None:
        from engine.core import EngineCore  # torch is imported here, on the replica's node

        self._core = EngineCore(config)
        self._info = self._core.load()
        # One thread: jobs on one GPU run one after another; `run` only waits on it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-core")

    async def info(self) -> ModelInfo:
        return self._info

    async def run(self, request: EngineRequest, sent_at: float) -> AsyncIterator[JobEvent]:
        """Stream one job's events; a cancelled Serve request stops the core at its next step."""
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[EngineEvent] = asyncio.Queue()
        stop = threading.Event()
        arrived_at = time.time()

        def work() -> None:
            timer = JobTimer(sent_at=sent_at, arrived_at=arrived_at)

            def emit(event: EngineEvent) -> None:
                loop.call_soon_threadsafe(events.put_nowait, timer.stamp(event))

            run_job(self._core, request, emit, stop.is_set)

        done = loop.run_in_executor(self._executor, work)
        try:
            while True:
                event = await events.get()
                yield JobEvent(event=event, sent_at=time.time())
                if isinstance(event, Finished | Failed):
                    break
            await done
        finally:
            stop.set()  # the client cancelled or went away: the core stops at its next step


class RayEngine:
    """An `EngineClient` over a Ray Serve application of `EngineReplica`s.

    `replicas` is how many replicas to run (one per GPU); `gpus_per_replica` defaults to 1 when
    the config asks for CUDA (or `auto` on a cluster with GPUs) and 0 otherwise. `address` is the
    Ray cluster to join (`None`: the one in `RAY_ADDRESS`, or a local one started here);
    `ray_init` passes further options to `ray.init`. With `deploy=False` the client attaches to an
    application that is already running under `app_name`.
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        replicas: int = 1,
        gpus_per_replica: float | None = None,
        address: str | None = None,
        app_name: str = APP_NAME,
        deploy: bool = True,
        ray_init: dict[str, Any] | None = None,
    ) -> None:
        if replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {replicas}")
        if gpus_per_replica is not None and gpus_per_replica < 0:
            raise ValueError(f"gpus_per_replica cannot be negative, got {gpus_per_replica}")
        self._config = config or EngineConfig()
        self._replicas = replicas
        self._gpus = gpus_per_replica
        self._address = address
        self._app_name = app_name
        self._deploy = deploy
        self._ray_init = dict(ray_init or {})
        self._handle: Any = None
        self._info: ModelInfo | None = None
        self._starting: asyncio.Task[ModelInfo] | None = None
        self._responses: dict[str, Any] = {}
        self._owns_ray = False
        self._closed = False

    @property
    def slots(self) -> int:
        return self._replicas

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
        ray, serve = _import_ray()
        if not ray.is_initialized():
            await asyncio.to_thread(ray.init, address=self._address, **self._ray_init)
            self._owns_ray = True
        if self._deploy:
            gpus = self._gpus if self._gpus is not None else self._default_gpus(ray)
            # Ray gives each replica its own GPU through CUDA_VISIBLE_DEVICES: inside, it is "cuda".
            device = "cuda" if self._config.device.startswith("cuda:") else self._config.device
            deployment = serve.deployment(
                EngineReplica,
                name="EngineReplica",
                num_replicas=self._replicas,
                max_ongoing_requests=1,
                ray_actor_options={"num_gpus": gpus},
            )
            app = deployment.bind(replace(self._config, device=device))

            def deploy() -> Any:
                serve.start(proxy_location="Disabled")  # no HTTP: the bot talks through handles
                return serve.run(app, name=self._app_name, route_prefix=None)

            try:
                self._handle = await asyncio.to_thread(deploy)
            except Exception as error:
                raise EngineError(f"The engine could not start on Ray: {error}") from error
        else:
            self._handle = serve.get_app_handle(self._app_name)
        self._info = await self._handle.info.remote()
        log.info(
            "engine on Ray Serve ready: %s on %s, %d replica(s)",
            self._info.name,
            self._info.device,
            self._replicas,
        )
        return self._info

    def _default_gpus(self, ray: Any) -> float:
        device = self._config.device
        if device.startswith("cuda"):
            return 1
        if device == "auto":
            return 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        return 0

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
        final: Finished | Failed | None = None
        response: Any = None
        try:
            try:
                await self.start()
            except EngineError as error:
                final = Failed(job_id=job_id, reason=f"The engine is not available: {error}", retryable=True)
            if final is None and job_id not in self._responses:  # cancelled while the engine started
                final = Failed(job_id=job_id, reason=CANCELLED)
            if final is None:
                from ray.serve.exceptions import RequestCancelledError  # Ray is there: start() worked

                posted_at = time.time()
                response = self._handle.options(stream=True).run.remote(request, posted_at)
                self._responses[job_id] = response
                try:
                    async for message in response:
                        event = message.event
                        if isinstance(event, Finished):
                            timings = client_timings(event.timings, posted_at, message.sent_at, time.time())
                            final = replace(event, timings=timings)
                            break
                        if isinstance(event, Failed):
                            final = event
                            break
                        yield event
                    else:
                        final = Failed(job_id=job_id, reason=NO_RESULT)
                except RequestCancelledError:
                    final = (
                        Failed(job_id=job_id, reason=SHUT_DOWN, retryable=True)
                        if self._closed
                        else (Failed(job_id=job_id, reason=CANCELLED))
                    )
                except Exception as error:  # the replica died, or Ray lost it
                    log.error("job %s: Ray Serve request failed: %s", job_id, error)
                    final = Failed(
                        job_id=job_id, reason=SHUT_DOWN if self._closed else REPLICA_LOST, retryable=True
                    )
        finally:
            self._responses.pop(job_id, None)
            if final is None and response is not None:
                response.cancel()  # nobody listens any more: free the GPU
        yield final  # after forgetting the job, so the same job id may be submitted again at once

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
            ray, serve = _import_ray()
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
