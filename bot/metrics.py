"""Prometheus metrics: what an operator graphs and alerts on, fed from the dispatcher and Discord.

One `Metrics` object per process, each with its own registry (so tests can make as many as they
like). It learns about jobs as a dispatcher listener (`JobMetrics`): the final update of a job
reads the job's row once, for its kind, its queue wait, its engine time and its images. Queue
depth, running jobs and engine restarts are read when Prometheus scrapes, never pushed.

Names follow Prometheus conventions (`_total` on counters, base units); `imagine_images_total`
is the counter to `rate()`, and `imagine_images_per_second` is the last minute's rate for a
dashboard without PromQL.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.core.dispatcher import Dispatcher, JobUpdate
from bot.core.ports import JobStore
from engine.api import EngineClient

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
_STEP_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_RATE_WINDOW_S = 60.0
_RETRY_IN = re.compile(r"Retrying in ([0-9.]+) seconds")


class Metrics:
    """Every metric the bot exports; `render()` is the `/metrics` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.jobs = Counter(
            "imagine_jobs", "Jobs that ended, by kind and final status", ["kind", "status"], registry=r
        )
        self.queue_wait = Histogram(
            "imagine_queue_wait_seconds",
            "Time from queued to running",
            ["kind"],
            buckets=_SECONDS,
            registry=r,
        )
        self.engine_job = Histogram(
            "imagine_engine_job_seconds",
            "Engine time of a finished job",
            ["kind"],
            buckets=_SECONDS,
            registry=r,
        )
        self.engine_step = Histogram(
            "imagine_engine_step_seconds",
            "Engine time of a finished job over its denoising steps",
            ["kind"],
            buckets=_STEP_SECONDS,
            registry=r,
        )
        self.images = Counter("imagine_images", "Images made (grid cells and single images)", registry=r)
        self.discord_errors = Counter(
            "imagine_discord_api_errors",
            "Discord API calls that failed, by HTTP status",
            ["status"],
            registry=r,
        )
        self.rate_limit_waits = Counter(
            "imagine_discord_rate_limit_waits", "Times Discord told the bot to wait (HTTP 429)", registry=r
        )
        self.rate_limit_seconds = Counter(
            "imagine_discord_rate_limit_wait_seconds", "Seconds Discord told the bot to wait", registry=r
        )
        self._made: deque[tuple[float, int]] = deque()
        Gauge(
            "imagine_images_per_second",
            f"Images made per second over the last {_RATE_WINDOW_S:.0f} s",
            registry=r,
        ).set_function(self.images_per_second)
        self._queue_depth = Gauge("imagine_queue_depth", "Jobs waiting in the fair queue", registry=r)
        self._running = Gauge("imagine_jobs_running", "Jobs the engine is working on", registry=r)
        self._restarts = _RestartCollector()
        r.register(self._restarts)

    def watch_dispatcher(self, dispatcher: Dispatcher) -> None:
        """Queue depth and running jobs, read from `dispatcher` at every scrape."""
        self._queue_depth.set_function(dispatcher.queue_length)
        self._running.set_function(dispatcher.running_count)

    def watch_engine(self, engine: EngineClient) -> None:
        """Engine restarts (a dead or hung worker or replica replaced), read from `engine.restarts`."""
        self._restarts.engine = engine

    def made_images(self, count: int, now: float | None = None) -> None:
        self.images.inc(count)
        self._made.append((time.monotonic() if now is None else now, count))

    def images_per_second(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        while self._made and self._made[0][0] < now - _RATE_WINDOW_S:
            self._made.popleft()
        return sum(count for _, count in self._made) / _RATE_WINDOW_S

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _RestartCollector(Collector):
    """`imagine_engine_restarts_total`: the engine keeps the count; this reads it at scrape time."""

    def __init__(self) -> None:
        self.engine: EngineClient | None = None

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "imagine_engine_restarts", "Engine processes or replicas replaced after dying or hanging"
        )
        family.add_metric([], float(getattr(self.engine, "restarts", 0) or 0))
        yield family


class JobMetrics:
    """A dispatcher listener that turns job updates into metrics (see the module docstring)."""

    def __init__(self, metrics: Metrics, store: JobStore) -> None:
        self._metrics = metrics
        self._store = store
        self._steps: dict[str, int] = {}

    async def __call__(self, update: JobUpdate) -> None:
        if update.total:
            self._steps[update.job_id] = update.total
        if not update.final:
            return
        steps = self._steps.pop(update.job_id, 0)
        job = await self._store.get_job(update.job_id)
        kind = job.kind if job is not None else "unknown"
        self._metrics.jobs.labels(kind=kind, status=update.status).inc()
        if job is None:
            return
        if job.started_at is not None and job.created_at is not None:
            wait = (job.started_at - job.created_at).total_seconds()
            self._metrics.queue_wait.labels(kind=kind).observe(max(wait, 0.0))
        engine_s = (job.timings or {}).get("engine_s")
        if update.status == "done" and engine_s is not None:
            self._metrics.engine_job.labels(kind=kind).observe(engine_s)
            if steps:
                self._metrics.engine_step.labels(kind=kind).observe(engine_s / steps)
        if update.status == "done":
            self._metrics.made_images(len(job.cells))


class DiscordHTTP(Protocol):
    """discord.py's `HTTPClient`, as far as the metrics wrap it: every REST call goes through
    `request` (its arguments are discord.py's own, passed through untouched)."""

    async def request(self, *args: Any, **kwargs: Any) -> Any: ...


def watch_discord(http: DiscordHTTP, metrics: Metrics) -> Callable[[], None]:
    """Count Discord API errors (by status) and rate-limit waits; returns a function that undoes it.

    discord.py gives no hook for either: errors are counted around `HTTPClient.request` (every
    REST call goes through it), and a 429's wait is read from the warning discord.py logs before
    it sleeps ("... Retrying in N seconds").
    """
    original = http.request

    async def request(*args: Any, **kwargs: Any) -> Any:
        try:
            return await original(*args, **kwargs)
        except Exception as error:
            status = getattr(error, "status", None)
            metrics.discord_errors.labels(status=str(status) if status else "network").inc()
            raise

    http.request = request  # type: ignore[method-assign]  # the wrapping is the point
    handler = _RateLimitHandler(metrics)
    logger = logging.getLogger("discord.http")
    logger.addHandler(handler)

    def undo() -> None:
        http.request = original  # type: ignore[method-assign]
        logger.removeHandler(handler)

    return undo


class _RateLimitHandler(logging.Handler):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__(logging.WARNING)
        self._metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        match = _RETRY_IN.search(record.getMessage())
        if match:
            self._metrics.rate_limit_waits.inc()
            self._metrics.rate_limit_seconds.inc(float(match.group(1)))
