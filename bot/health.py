"""The status port (IMAGINE_METRICS_PORT): `/metrics`, `/healthz` and `/readyz` for operators.

- `/healthz` answers 200 while the process's event loop runs: an orchestrator restarts a
  process that stops answering it;
- `/readyz` answers 200 when every check passes (the store answers a query, the engine or Ray
  Serve answers, the Discord gateway is connected), else 503; the body names each check, so a
  failing probe says what is wrong. Each check has a few seconds, so a hung store cannot hang
  the probe;
- `/metrics` is the Prometheus text format (`bot.metrics`).

aiohttp serves it on the bot's own event loop: nothing here starts a thread.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from bot.core.ports import JobStore
from bot.core.services import Services
from bot.metrics import CONTENT_TYPE, DiscordHTTP, JobMetrics, Metrics, watch_discord
from engine.api import EngineClient

log = logging.getLogger(__name__)

Check = Callable[[], Awaitable[bool]]
CHECK_TIMEOUT_S = 5.0


class StatusServer:
    """The HTTP server on the status port; `port` is the bound one (useful with port 0)."""

    def __init__(self, metrics: Metrics, checks: dict[str, Check], host: str, port: int) -> None:
        self._metrics = metrics
        self._checks = checks
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._render_metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("status port: http://%s:%d/metrics, /healthz, /readyz", self._host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _render_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self._metrics.render(), headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        names = list(self._checks)
        results = await asyncio.gather(*(_run(self._checks[name]) for name in names))
        report = dict(zip(names, results, strict=True))
        ready = all(results)
        return web.Response(
            status=200 if ready else 503,
            text=json.dumps({"ready": ready, "checks": report}) + "\n",
            content_type="application/json",
        )


async def _run(check: Check) -> bool:
    try:
        return bool(await asyncio.wait_for(check(), CHECK_TIMEOUT_S))
    except Exception as error:
        log.warning("readiness check failed: %s", error)
        return False


def store_check(store: JobStore) -> Check:
    async def check() -> bool:
        await store.get_job("readyz-probe")  # a real query by primary key: cheap, and it needs the database
        return True

    return check


def engine_check(engine: EngineClient) -> Check:
    """The engine's own `ping` (a live worker, a Serve replica that answers); else a loaded model."""

    async def check() -> bool:
        ping = getattr(engine, "ping", None)
        if ping is not None:
            return await ping()
        return getattr(engine, "info", None) is not None

    return check


class GatewayClient(Protocol):
    """What the status port reads of the Discord client (a `discord.Client`; this module stays
    free of discord.py so it can serve any front end)."""

    @property
    def http(self) -> DiscordHTTP: ...

    def is_ready(self) -> bool: ...

    def is_closed(self) -> bool: ...


def gateway_check(client: GatewayClient) -> Check:
    async def check() -> bool:
        return client.is_ready() and not client.is_closed()

    return check


async def start_status(
    services: Services, client: GatewayClient
) -> tuple[StatusServer, Callable[[], None]] | None:
    """The status port for the Discord bot, when IMAGINE_METRICS_PORT is set; else None.

    Call it before `services.start_dispatching`, so recovered jobs are counted too. Returns the
    server and a function that takes the Discord instrumentation off again.
    """
    settings = services.settings
    if settings.metrics_port is None:
        return None
    metrics = Metrics()
    metrics.watch_dispatcher(services.dispatcher)
    metrics.watch_engine(services.engine)
    services.dispatcher.add_listener(JobMetrics(metrics, services.store))
    unwatch = watch_discord(client.http, metrics)
    checks = {
        "store": store_check(services.store),
        "engine": engine_check(services.engine),
        "discord_gateway": gateway_check(client),
    }
    server = StatusServer(metrics, checks, settings.metrics_host, settings.metrics_port)
    await server.start()
    return server, unwatch
