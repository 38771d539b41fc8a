"""`IMAGINE_ENGINE=ray` end to end: the settings deploy the engine on Ray (the run's cluster, as
the bot joins the one at IMAGINE_RAY_ADDRESS) and a job made through `Services` comes back done."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.services import Services
from tests.bot.test_services_engines import one_grid, settings_for


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_ray_engine_runs_a_job_on_the_tiny_model(tmp_path: Path, ray_cluster) -> None:
    settings = settings_for(tmp_path, IMAGINE_ENGINE="ray", IMAGINE_RAY_REPLICAS="1")
    assert settings.ray_app_name() == "imagine-tiny"
    services = await Services.start(settings)
    try:
        assert services.info.name == "tiny" and services.engine.slots == 1
        await asyncio.wait_for(one_grid(services), 240)
    finally:
        await services.stop(grace_s=5.0)
