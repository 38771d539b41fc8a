"""The bot against the real engine: the `tiny` preset's diffusers pipelines, in-process.

SimCord runs the bot in this process, so the engine is `InProcessEngine` (the same `EngineCore`
the spawned worker runs). One engine for the module: the model loads once.
"""

from __future__ import annotations

import pytest

from bot.settings import Settings
from engine.api import EngineConfig
from engine.inprocess import InProcessEngine
from tests.bot.discord.conftest import attachment_image, labels


@pytest.fixture(scope="module")
def tiny_engine():

    engine = InProcessEngine(EngineConfig(model="tiny", device="cpu", warmup=False))
    yield engine
    engine._executor.shutdown(wait=True)


@pytest.fixture
def engine(tiny_engine):
    return tiny_engine


@pytest.fixture
def settings(data_dir) -> Settings:
    return Settings(data_dir=data_dir, model="tiny", device="cpu", engine="inprocess")


async def test_imagine_and_u4_on_the_tiny_model(world):
    result = await world.alice.slash(world.channel, "imagine", prompt="a lighthouse at dusk --seed 5 --q .25")
    job = await world.job_of(result.response.id)
    await world.settled(job.id)

    grid = world.message(result.response.id)
    assert labels(grid) == [["U1", "U2", "U3", "U4", "🔄"], ["V1", "V2", "V3", "V4"]]
    assert "model `tiny`" in grid.content
    job = await world.services.store.get_job(job.id)
    picture = await attachment_image(grid.attachments[0])
    assert picture.format == "PNG" and picture.size == (job.width * 2, job.height * 2)
    assert len({cell.seed for cell in job.cells}) == 4

    await world.bob.click(grid, label="U4")
    single = world.channel.last_message
    cell = await world.job_of(single.id)
    await world.settled(cell.id)
    assert single.reference.message_id == grid.id
    assert (await attachment_image(world.message(single.id).attachments[0])).size == (job.width, job.height)

    assert cell.user_id == world.bob.id and cell.parent_index == 3
