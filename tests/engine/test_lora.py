"""LoRA styles on the real tiny pipeline: loaded by name from the operator's folder, switched per job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.api import EngineConfig, ImagineRequest, LoraChoice, PromptSpec, VaryRequest
from engine.core import EngineCore
from tests.engine.conftest import fail, finish, pixels
from tests.support.tiny_lora import write_tiny_lora


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("loras")
    write_tiny_lora(folder, "ink", seed=1)
    write_tiny_lora(folder, "Neon-2", seed=2)
    (folder / "notes.txt").write_text("not a LoRA")
    return folder


@pytest.fixture(scope="module")
def styled(lora_dir) -> EngineCore:
    core = EngineCore(EngineConfig(model="tiny", device="cpu", warmup=False, lora_dir=str(lora_dir)))
    core.load()
    return core


def cells(core: EngineCore, lora: LoraChoice | None = None) -> np.ndarray:
    request = ImagineRequest(
        "t", PromptSpec.single("a red fox"), seeds=(1, 2), width=64, height=64, steps=3, lora=lora
    )
    return np.stack([pixels(image) for image in finish(core, request).images])


def test_installed_styles_are_named_by_their_files(styled):
    assert styled.info.loras == ("ink", "neon-2")


def test_a_style_changes_the_picture_its_weight_scales_and_off_is_off_again(styled):
    plain = cells(styled)
    inked = cells(styled, LoraChoice("ink"))
    assert np.abs(inked - plain).mean() > 2.0
    assert np.abs(cells(styled, LoraChoice("ink", 0.0)) - plain).mean() < 0.5  # weight 0: no style
    assert np.abs(cells(styled, LoraChoice("neon-2")) - inked).mean() > 2.0  # another style, another look
    assert np.abs(cells(styled) - plain).mean() < 0.5  # and back to no style


def test_a_style_works_on_derived_pipelines_too(styled):
    source = finish(
        styled, ImagineRequest("s", PromptSpec.single("a fox"), seeds=(3,), width=64, height=64, steps=3)
    ).images[0]
    plain = finish(styled, VaryRequest("v", source, PromptSpec.single("a fox"), seeds=(4,), steps=4)).images[
        0
    ]
    inked = finish(
        styled,
        VaryRequest("v", source, PromptSpec.single("a fox"), seeds=(4,), steps=4, lora=LoraChoice("ink")),
    ).images[0]
    assert np.abs(pixels(inked) - pixels(plain)).mean() > 1.0


def test_an_unknown_style_fails_the_job_with_the_installed_names(styled):
    request = ImagineRequest(
        "t", PromptSpec.single("x"), seeds=(1,), width=64, height=64, steps=1, lora=LoraChoice("oil")
    )
    failed = fail(styled, request)
    assert "'oil' is not installed (installed: ink, neon-2)" in failed.reason
    assert styled.batch_key(request) is None  # styled jobs never share a batch
