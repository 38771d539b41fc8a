"""--sref / --oref in the engine: an IP-Adapter (tiny random weights built here) steers one job
and leaves the UNet as it was for every other job."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image

from engine.api import EngineConfig, ImageData, Reference
from engine.core import EngineCore
from engine.ops.references import adapter_scale
from tests.engine.conftest import distance, fail, finish, imagine
from tests.support.tiny_ip_adapter import build_tiny_ip_adapter

RED = ImageData.from_pil(Image.new("RGB", (48, 40), (230, 20, 20)))
CHECKS = ImageData.from_pil(Image.effect_noise((48, 40), 90).convert("RGB"))


@pytest.fixture(scope="module")
def adapter_dir(core, tmp_path_factory) -> Path:
    return build_tiny_ip_adapter(core.model.unet, tmp_path_factory.mktemp("ip-adapter"))


@pytest.fixture(scope="module")
def referencing_core(core, adapter_dir) -> EngineCore:
    """The session's tiny model with the adapter configured (sharing its loaded weights)."""
    engine = EngineCore(EngineConfig(model="tiny", device="cpu", warmup=False, ip_adapter=str(adapter_dir)))
    engine.model, engine.info = core.model, core.info
    return engine


def test_the_weight_becomes_the_adapter_scale():
    assert adapter_scale(0) == 0 and round(adapter_scale(100), 2) == 0.47 and adapter_scale(1000) == 1.5
    with pytest.raises(ValueError, match="0 to 1000"):
        adapter_scale(1001)


def test_a_style_reference_steers_the_job_and_leaves_the_unet_as_it_was(referencing_core):
    plain = finish(referencing_core, imagine(steps=3))
    styled = finish(referencing_core, imagine(steps=3, references=(Reference(RED, 1000),)))
    other = finish(referencing_core, imagine(steps=3, references=(Reference(CHECKS, 1000),)))
    assert all(distance(a, b) > 1.0 for a, b in zip(plain.images, styled.images, strict=True))
    assert all(distance(a, b) > 0.5 for a, b in zip(styled.images, other.images, strict=True))
    again = finish(referencing_core, imagine(steps=3))
    assert [i.rgb for i in again.images] == [i.rgb for i in plain.images]  # adapter taken out
    assert referencing_core.model.unet.encoder_hid_proj is None


def test_weight_zero_is_no_reference_and_omni_with_style_share_the_adapter(referencing_core):
    plain = finish(referencing_core, imagine(steps=3))
    off = finish(referencing_core, imagine(steps=3, references=(Reference(RED, 0),)))
    assert all(distance(a, b) < 0.5 for a, b in zip(plain.images, off.images, strict=True))
    both = finish(
        referencing_core,
        imagine(steps=3, references=(Reference(RED, 200), Reference(CHECKS, 300, kind="omni"))),
    )
    assert len(both.images) == 4


def test_references_run_alone(referencing_core):
    assert referencing_core.batch_key(imagine(references=(Reference(RED),))) is None
    assert referencing_core.batch_key(imagine()) is not None


def test_without_an_adapter_a_reference_names_the_setting(core):
    assert "IMAGINE_IP_ADAPTER" in fail(core, imagine(steps=2, references=(Reference(RED),))).reason


def test_a_folder_without_adapter_weights_is_named(core, tmp_path):
    engine = EngineCore(EngineConfig(model="tiny", device="cpu", warmup=False, ip_adapter=str(tmp_path)))
    engine.model, engine.info = core.model, core.info
    reason = fail(engine, imagine(steps=2, references=(Reference(RED),))).reason
    assert str(tmp_path) in reason and "ip-adapter" in reason


def test_the_adapter_is_read_once_and_stays_resident(core, adapter_dir, tmp_path):
    copy = tmp_path / "adapter"
    shutil.copytree(adapter_dir, copy)
    engine = EngineCore(EngineConfig(model="tiny", device="cpu", warmup=False, ip_adapter=str(copy)))
    engine.model, engine.info = core.model, core.info
    first = finish(engine, imagine(steps=2, references=(Reference(RED, 500),)))
    shutil.rmtree(copy)  # the weights and the image encoder are in memory now
    second = finish(engine, imagine(steps=2, references=(Reference(RED, 500),)))
    assert [i.rgb for i in first.images] == [i.rgb for i in second.images]
    assert engine.model.pipe.image_encoder is None  # not part of the pipeline between such jobs


def test_the_sdxl_family_takes_a_reference_too(xl_core, tmp_path):
    folder = build_tiny_ip_adapter(xl_core.model.unet, tmp_path / "xl-adapter")
    engine = EngineCore(EngineConfig(model="tiny-xl", device="cpu", warmup=False, ip_adapter=str(folder)))
    engine.model, engine.info = xl_core.model, xl_core.info
    plain = finish(engine, imagine(steps=2))
    styled = finish(engine, imagine(steps=2, references=(Reference(CHECKS, 1000),)))
    assert all(distance(a, b) > 0.5 for a, b in zip(plain.images, styled.images, strict=True))
