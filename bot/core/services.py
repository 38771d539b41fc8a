"""Everything a front end needs, started and stopped together: store, engine, dispatcher, jobs.

The console and the Discord bot both run on `Services`, so they share one startup order (store
and migrations first, then the engine, then recovery) and one graceful shutdown (no new starts,
running jobs finish or go back to `queued`, the engine and the store close cleanly).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from bot.core.blend import BlendService
from bot.core.dispatcher import Dispatcher, Listener
from bot.core.jobs import JobService
from bot.core.limits import Limits
from bot.core.prompt_tools import PromptTools
from bot.settings import Settings
from engine.api import EngineClient, EngineRequest, ModelInfo
from engine.local import LocalEngine
from storage.models import Job
from storage.ownership import Owner
from storage.store import Store
from storage.validation import check_keywords

log = logging.getLogger(__name__)


def build_engine(settings: Settings) -> EngineClient:
    """The engine the settings ask for; none of the imports below pulls torch into this process.

    `local` (the default) spawns the engine process; `inprocess` runs the engine in a thread here
    (tests, SimCord), which imports torch into this process when it starts; `ray` deploys one
    engine replica per GPU on a Ray cluster (Ray itself is imported when the engine starts).
    """
    config = settings.engine_config()
    # Function-local imports on purpose: the other engine kinds are optional (Ray) or heavy (the
    # in-process engine brings torch), so only the one the settings name is imported.
    if settings.engine == "inprocess":
        from engine.inprocess import InProcessEngine

        return InProcessEngine(config)
    if settings.engine == "ray":
        from engine.ray_serve import RayEngine, Scaling

        scaling = Scaling(
            replicas=settings.ray_replicas,
            min_replicas=settings.ray_min_replicas,
            max_replicas=settings.ray_max_replicas,
            target_ongoing_requests=settings.ray_target_ongoing_requests,
            gpus_per_replica=settings.ray_gpus_per_replica,
        )
        return RayEngine(
            config, scaling=scaling, address=settings.ray_address, app_name=settings.ray_app_name()
        )
    return LocalEngine(config)


class Given(TypedDict, total=False):
    """What a caller may hand `Services.open` and `Services.start` instead of what they build."""

    engine: EngineClient | None  # used as is, not closed by `stop()`; default: `build_engine`
    store: Store | None  # likewise; default: the settings' database, migrated
    role: str | None  # "bot", "console", "web": recorded in the store before the engine starts


@dataclass
class Services:
    """The running parts: `await Services.start(settings)`, or `Services.open` then
    `start_dispatching` when listeners must be added in between (see `open`)."""

    settings: Settings
    store: Store
    engine: EngineClient
    info: ModelInfo
    dispatcher: Dispatcher
    jobs: JobService
    owns_engine: bool = True
    owns_store: bool = True
    _dispatching: bool = field(default=False, repr=False)

    @classmethod
    async def open(cls, settings: Settings, **given: Unpack[Given]) -> Services:
        """Open the store (migrations run) and start the engine, but start no job yet.

        The first of two phases: a front end adds its dispatcher listeners to the result (the
        Discord bot does in `create_bot`), then calls `start_dispatching`, so not even a
        recovered job can finish before someone listens for its result. `stop()` closes what
        was opened here either way.

        A given `engine` or `store` (see `Given`) is used as is and is not closed by `stop()` (the caller owns
        it); what is built here is closed here.

        `role` ("bot", "console") records this process in the store before the engine starts; a
        second "bot" on one database is refused (`AnotherProcessRunningError`) unless
        `settings.allow_second_bot`.
        """
        check_keywords("Services.open", given, Given.__optional_keys__)
        engine, store, role = given.get("engine"), given.get("store"), given.get("role")
        owns_store = store is None
        if store is None:
            store = await Store.open(
                settings.database_url, settings.data_dir, wait_s=settings.database_wait_s
            )
        owner = Owner(lease_s=settings.job_lease_s)
        owns_engine = engine is None
        try:
            if role is not None:
                exclusive = role == "bot" and not settings.allow_second_bot
                others = await store.register_process(owner, role, exclusive=exclusive)
                if others:
                    log.warning("%d other %s process(es) use this database", len(others), role)
            if engine is None:
                engine = build_engine(settings)
            info = await engine.start()
            log.info("engine ready: %s on %s, %d slot(s)", info.name, info.device, engine.slots)
        except BaseException:
            if owns_engine and engine is not None:
                await engine.close()
            if role is not None:
                with contextlib.suppress(Exception):
                    await store.release(owner)
            if owns_store:
                await store.close()
            raise
        limits = Limits(settings.max_running_per_user, settings.max_queued_per_user)
        jobs: JobService | None = None

        async def build_request(job: Job) -> EngineRequest:
            assert jobs is not None
            return await jobs.build_request(job)

        dispatcher = Dispatcher(store, engine, build_request, limits, owner=owner)
        jobs = JobService(
            store,
            dispatcher,
            info,
            model_name=settings.model,
            versions=settings.versions,
            turbo_allowed=bool(getattr(settings, "turbo", False)),
        )
        return cls(settings, store, engine, info, dispatcher, jobs, owns_engine, owns_store)

    @property
    def blends(self) -> BlendService:
        """/blend submissions (stateless: a new one costs nothing)."""
        return BlendService(self.jobs)

    @property
    def prompt_tools(self) -> PromptTools:
        """/shorten, /describe and their prompt buttons."""
        return PromptTools(self.jobs, self.engine, captioner=self.settings.captioner)

    async def start_dispatching(self, recover: Callable[[Job], bool] | None = None) -> list[str]:
        """The second phase: recover pending jobs, then run jobs. Returns the recovered job ids.

        `recover` picks which pending jobs this process takes over (default: all); the console
        takes console jobs, the Discord bot Discord jobs. Listeners added before this call see
        every update of the recovered jobs. Call it once.
        """
        if self._dispatching:
            raise RuntimeError("the services are already dispatching; start_dispatching runs once")
        self._dispatching = True
        return await self.dispatcher.start(recover=recover)

    @classmethod
    async def start(
        cls,
        settings: Settings,
        *,
        recover: Callable[[Job], bool] | None = None,
        listeners: Iterable[Listener] = (),
        **given: Unpack[Given],
    ) -> Services:
        """`open`, add `listeners` to the dispatcher, then `start_dispatching`, in one call.

        For front ends whose listeners do not need the `Services` object to exist first; the
        Discord bot needs it (the bot is built on the services), so it uses the two phases.
        """
        services = await cls.open(settings, **given)
        try:
            for listener in listeners:
                services.dispatcher.add_listener(listener)
            await services.start_dispatching(recover=recover)
        except BaseException:
            await services.stop(grace_s=0.0)
            raise
        return services

    async def stop(self, grace_s: float = 30.0) -> None:
        """Graceful: no new jobs start, running ones finish within `grace_s` or go back to queued."""
        try:
            await self.dispatcher.stop(grace_s)
        finally:
            try:
                if self.owns_engine:
                    await self.engine.close()
            finally:
                if self.owns_store:
                    await self.store.close()
        log.info("stopped")
