"""`IMAGINE_ENGINE=ray` end to end: the settings deploy the engine on Ray (the run's cluster, as
the bot joins the one at IMAGINE_RAY_ADDRESS) and a job made through `Services` comes back done."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bot.test_services_engines import grid_through, settings_for


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_ray_engine_runs_a_job_on_the_tiny_model(tmp_path: Path, ray_cluster) -> None:
    settings = settings_for(tmp_path, IMAGINE_ENGINE="ray", IMAGINE_RAY_REPLICAS="1")
    assert settings.ray_app_name() == "imagine-tiny"
    await grid_through(settings)
