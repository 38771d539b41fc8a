"""`IMAGINE_ENGINE` end to end: the settings pick the engine, and a job made through `Services`
comes back done with its images on disk, on the real `tiny` model.

The same job through `IMAGINE_ENGINE=ray` runs on the run's shared Ray cluster, in
tests/scaleout/test_ray_services.py.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from bot.core.jobs import Requester
from bot.core.services import Services, build_engine
from bot.settings import Settings
from storage.models import JobStatus

OPERATOR = Requester(user_id=1, user_name="operator", source="console")


def settings_for(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_env(
        {
            "IMAGINE_DATA_DIR": str(tmp_path / "data"),
            "IMAGINE_MODEL": "tiny",
            "IMAGINE_DEVICE": "cpu",
            **environ,
        }
    )


def test_each_engine_setting_builds_its_engine_without_importing_torch_or_ray():
    code = (
        "import sys\n"
        "from bot.settings import Settings\n"
        "from bot.core.services import build_engine\n"
        "kinds = {}\n"
        "for name in ('local', 'inprocess', 'ray'):\n"
        "    engine = build_engine(Settings.from_env({'IMAGINE_ENGINE': name}))\n"
        "    kinds[name] = type(engine).__name__\n"
        "ray = build_engine(Settings.from_env({'IMAGINE_ENGINE': 'ray', 'IMAGINE_RAY_REPLICAS': '3'}))\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'ray') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "expected = {'local': 'LocalEngine', 'inprocess': 'InProcessEngine', 'ray': 'RayEngine'}\n"
        "assert kinds == expected, kinds\n"
        "assert ray.slots == 3, ray.slots  # the dispatcher keeps one job per replica in flight\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_the_ray_address_setting_is_the_cluster_the_engine_joins():
    settings = Settings.from_env({"IMAGINE_ENGINE": "ray", "IMAGINE_RAY_ADDRESS": "ray://head:10001"})
    engine = build_engine(settings)
    assert engine._address == "ray://head:10001"  # what RayEngine.start hands to ray.init


async def one_grid(services: Services) -> None:
    [job] = await services.jobs.imagine(OPERATOR, "a lighthouse at dusk --q .25 --seed 9")
    updates = [update async for update in services.dispatcher.subscribe(job.id)]
    assert updates[-1].status == JobStatus.DONE, updates[-1]
    done = await services.store.get_job(job.id)
    assert done.status == JobStatus.DONE and [cell.seed for cell in done.cells] == [9, 10, 11, 12]
    for cell in done.cells:
        assert (services.settings.data_dir / cell.path).is_file()
        assert (cell.width, cell.height) == (services.info.native_width, services.info.native_height)


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_inprocess_engine_runs_a_job_on_the_tiny_model(tmp_path: Path):
    await grid_through(settings_for(tmp_path, IMAGINE_ENGINE="inprocess"))


async def grid_through(settings: Settings) -> None:
    """Start `Services` on these settings (one engine slot), make one grid, stop."""
    services = await Services.start(settings)
    try:
        assert services.info.name == "tiny" and services.engine.slots == 1
        await asyncio.wait_for(one_grid(services), 240)
    finally:
        await services.stop(grace_s=5.0)
