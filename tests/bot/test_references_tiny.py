"""--sref end to end on the real `tiny` engine (in process) with tiny random IP-Adapter weights:
the prompt, the kept picture, the engine request and the adapter in the UNet, through `Services`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.core.jobs import Requester
from bot.core.services import Services
from bot.settings import Settings
from engine.api import EngineConfig, ImageData
from engine.inprocess import InProcessEngine
from engine.models import load_model
from tests.support.tiny_ip_adapter import build_tiny_ip_adapter

ALICE = Requester(user_id=11, user_name="alice", guild_id=None, channel_id=None, source="console")
STYLE = ImageData.from_pil(Image.effect_noise((64, 48), 90).convert("RGB"))
URL = "https://example.com/style.png"


@pytest.fixture
def adapter_dir(tmp_path: Path) -> Path:
    return build_tiny_ip_adapter(load_model("tiny", "cpu").unet, tmp_path / "ip-adapter")


async def test_a_style_reference_changes_the_grid_on_the_tiny_model(tmp_path, adapter_dir):
    settings = Settings(data_dir=tmp_path / "data", model="tiny", device="cpu", engine="inprocess")
    engine = InProcessEngine(
        EngineConfig(model="tiny", device="cpu", warmup=False, ip_adapter=str(adapter_dir))
    )
    services = await Services.start(settings, engine=engine)
    try:
        assert services.info.references
        [plain] = await services.jobs.imagine(ALICE, "a red lighthouse --seed 5 --q .25")
        [styled] = await services.jobs.imagine(
            ALICE, f"a red lighthouse --seed 5 --q .25 --sref {URL} --sw 1000", references={URL: STYLE}
        )
        await asyncio.wait_for(services.dispatcher.wait_idle(), 300)
        plain, styled = await services.store.get_job(plain.id), await services.store.get_job(styled.id)
        assert plain.status == styled.status == "done"
        grids = [
            np.asarray(services.store.files.open_image(job.grid.path), dtype=float) for job in (plain, styled)
        ]
        assert np.abs(grids[0] - grids[1]).mean() > 1.0  # same seed, the reference made the difference
    finally:
        await services.stop(grace_s=1.0)
        await engine.close()
