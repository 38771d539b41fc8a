"""describe: prompts for a picture from the operator's captioning model (a tiny random BLIP here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from engine.api import DescribeRequest, EngineConfig, ImageData
from engine.core import EngineCore
from tests.engine.conftest import fail, finish
from tests.support.tiny_captioner import build_tiny_captioner

PICTURE = ImageData.from_pil(Image.new("RGB", (80, 60), (200, 40, 90)))


@pytest.fixture(scope="module")
def captioner_dir(tmp_path_factory) -> Path:
    return build_tiny_captioner(tmp_path_factory.mktemp("captioner"))


@pytest.fixture(scope="module")
def describing_core(core, captioner_dir) -> EngineCore:
    """The session's tiny model with a captioner configured (sharing its loaded weights)."""
    engine = EngineCore(EngineConfig(model="tiny", device="cpu", warmup=False, captioner=str(captioner_dir)))
    engine.model, engine.info = core.model, core.info
    return engine


def test_four_distinct_prompts_come_back(describing_core):
    done = finish(describing_core, DescribeRequest("d", PICTURE))
    assert done.images == ()
    assert len(done.texts) == 4 and len(set(done.texts)) == 4
    assert all(text.strip() for text in done.texts)
    # The captioner loads once and answers the same picture the same way.
    again = finish(describing_core, DescribeRequest("d2", PICTURE))
    assert again.texts == done.texts


def test_without_a_captioner_describe_says_what_to_configure(core):
    reason = fail(core, DescribeRequest("d", PICTURE)).reason
    assert "IMAGINE_CAPTIONER" in reason


def test_a_folder_that_is_not_a_captioner_is_named_in_the_refusal(core, tmp_path):
    engine = EngineCore(EngineConfig(model="tiny", device="cpu", warmup=False, captioner=str(tmp_path)))
    engine.model, engine.info = core.model, core.info
    reason = fail(engine, DescribeRequest("d", PICTURE)).reason
    assert "could not be loaded" in reason and str(tmp_path) in reason
