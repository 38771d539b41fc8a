"""The status port: a job moves the Prometheus counters, and /healthz and /readyz answer.

Real store, dispatcher and status server on loopback; the engine is the dispatcher tests'
stand-in and Discord a small object with the three things the port reads from the client.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.core.services import Services
from bot.health import start_status
from bot.settings import Settings
from storage.models import JobStatus
from tests.support.stand_in_engine import StandInEngine


class FakeClient:
    """What the status port needs of a discord.py client."""

    def __init__(self) -> None:
        self.ready = True
        self.http = FakeHttp()

    def is_ready(self) -> bool:
        return self.ready

    def is_closed(self) -> bool:
        return False


class FakeHttp:
    async def request(self, route: str) -> str:
        if route == "bad":
            error = RuntimeError("403 Forbidden")
            error.status = 403  # as discord.HTTPException has
            raise error
        return "ok"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", model="stand-in", device="cpu", metrics_port=0)


async def test_a_job_moves_the_counters_and_the_probes_say_what_is_ready(settings) -> None:
    services = await Services.open(settings, engine=StandInEngine())
    client = FakeClient()
    server, unwatch = await start_status(services, client)
    base = f"http://127.0.0.1:{server.port}"
    try:
        await services.start_dispatching()
        job = await services.store.create_job(kind="imagine", source="console", user_id=7, prompt="a kite")
        await services.dispatcher.submit(job)
        await asyncio.wait_for(services.dispatcher.wait_idle(), 10)
        assert (await services.store.get_job(job.id)).status == JobStatus.DONE
        await services.dispatcher.listeners_idle()  # the metrics listener runs on its own task
        with pytest.raises(RuntimeError):
            await client.http.request("bad")
        logging.getLogger("discord.http").warning(
            "We are being rate limited. %s %s responded with 429. Retrying in %.2f seconds.",
            "PATCH",
            "/x",
            1.5,
        )

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/metrics") as response:
                assert response.status == 200
                scraped = samples(await response.text())
            async with http.get(f"{base}/healthz") as response:
                assert response.status == 200
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
                assert (await response.json())["checks"] == {
                    "store": True,
                    "engine": True,
                    "discord_gateway": True,
                }
            client.ready = False  # the gateway dropped
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 503
                assert (await response.json())["checks"]["discord_gateway"] is False
    finally:
        unwatch()
        await server.stop()
        await services.stop(0)

    assert scraped[("imagine_jobs_total", (("kind", "imagine"), ("status", "done")))] == 1
    assert scraped[("imagine_images_total", ())] == 4
    assert scraped[("imagine_images_per_second", ())] > 0
    assert scraped[("imagine_queue_wait_seconds_count", (("kind", "imagine"),))] == 1
    assert scraped[("imagine_engine_job_seconds_count", (("kind", "imagine"),))] == 1
    assert scraped[("imagine_engine_step_seconds_count", (("kind", "imagine"),))] == 1
    assert scraped[("imagine_queue_depth", ())] == 0
    assert scraped[("imagine_engine_restarts_total", ())] == 0
    assert scraped[("imagine_discord_api_errors_total", (("status", "403"),))] == 1
    assert scraped[("imagine_discord_rate_limit_waits_total", ())] == 1
    assert scraped[("imagine_discord_rate_limit_wait_seconds_total", ())] == 1.5


async def test_no_port_no_server(settings) -> None:
    services = await Services.open(
        Settings(data_dir=settings.data_dir, model="stand-in"), engine=StandInEngine()
    )
    try:
        assert await start_status(services, FakeClient()) is None
    finally:
        await services.stop(0)
