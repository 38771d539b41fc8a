"""upscale: 2x by resize + refine, tiled when large, refused past the engine's maximum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionUpscalePipeline, UNet2DConditionModel

from engine.api import EngineConfig, ImageData, Progress, UpscaleRequest
from engine.builders import TINY_UNET, build_tiny
from engine.core import EngineCore
from engine.models import ModelLoadError
from engine.ops.upscale import tile_starts
from tests.engine.conftest import PROMPT, distance, fail, finish, imagine, run_events


@pytest.fixture(scope="module")
def source(core) -> ImageData:
    return finish(core, imagine(steps=4, seeds=(21,), width=128, height=96)).images[0]


def upscale(source: ImageData, **fields) -> UpscaleRequest:
    base = {"job_id": "up", "source": source, "prompt": PROMPT, "seed": 9, "steps": 4}
    base.update(fields)
    return UpscaleRequest(**base)


def _downscaled(image: ImageData, width: int, height: int) -> ImageData:
    return ImageData.from_pil(image.to_pil().resize((width, height)))


def test_upscale_doubles_the_size_and_keeps_the_picture(core, source):
    done = finish(core, upscale(source))
    (image,) = done.images
    assert (image.width, image.height) == (256, 192)
    assert done.seeds == (9,) and done.grid is None
    back = _downscaled(image, source.width, source.height)
    other = finish(core, imagine(steps=4, seeds=(22,), width=128, height=96)).images[0]
    assert distance(back, source) < distance(back, other)


def test_creative_changes_more_than_subtle(core, source):
    subtle = finish(core, upscale(source, mode="subtle")).images[0]
    creative = finish(core, upscale(source, mode="creative")).images[0]
    plain = ImageData.from_pil(source.to_pil().resize((256, 192)))
    assert distance(subtle, plain) < distance(creative, plain)


def test_large_upscales_run_in_tiles(source):
    tiled = EngineCore(EngineConfig(model="tiny", device="cpu", warmup=False), upscale_tile=96)
    tiled.load()
    events = run_events(tiled, upscale(source, steps=4))
    done = events[-1]
    assert done.timings["tiles"] == len(tile_starts(256, 96, 16)) * len(tile_starts(192, 96, 16))
    (image,) = done.images
    assert (image.width, image.height) == (256, 192)
    totals = {e.total for e in events if isinstance(e, Progress)}
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert steps == sorted(steps) and steps[-1] == max(totals)  # progress runs across all tiles
    # the tiles blend: no hard seam where the first tile ends
    a = np.asarray(image.to_pil(), dtype=np.float64)
    joins = np.abs(np.diff(a, axis=1)).mean(axis=(0, 2))
    assert joins[95] < 3 * np.median(joins)
    back = _downscaled(image, source.width, source.height)
    other = finish(tiled, imagine(steps=4, seeds=(22,), width=128, height=96)).images[0]
    assert distance(back, source) < distance(back, other)


def test_tile_starts_cover_the_axis():
    assert tile_starts(100, 128, 32) == [0]
    starts = tile_starts(256, 96, 16)
    assert starts[0] == 0 and starts[-1] == 256 - 96
    assert all(b - a <= 96 - 16 for a, b in itertools.pairwise(starts))


def test_upscale_past_the_maximum_is_refused(core):
    big = ImageData(width=384, height=384, rgb=bytes(384 * 384 * 3))
    failed = fail(core, upscale(big))
    assert "768x768" in failed.reason and "maximum" in failed.reason
    assert "mode" in fail(core, upscale(big, mode="extreme")).reason


def _tiny_x4_upscaler(folder) -> None:
    """A random-weight SD x4 upscaler pipeline (4x VAE, 7-channel UNet with a noise-level embedding)."""

    base = build_tiny()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        **{**TINY_UNET, "sample_size": 32, "in_channels": 7},  # latents + the low-resolution image
        cross_attention_dim=32,
        attention_head_dim=8,
        num_class_embeds=1000,  # the noise level
    )
    vae = AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        block_out_channels=(8, 8, 8),
        latent_channels=4,
        norm_num_groups=4,
        scaling_factor=0.08333,
    )
    StableDiffusionUpscalePipeline(
        vae=vae,
        text_encoder=base.text_encoder,
        tokenizer=base.tokenizer,
        unet=unet,
        low_res_scheduler=DDPMScheduler(),
        scheduler=base.scheduler,
        max_noise_level=350,
    ).save_pretrained(folder)


def test_a_configured_upscaler_model_does_the_upscale(tmp_path):
    _tiny_x4_upscaler(tmp_path / "x4")
    engine = EngineCore(
        EngineConfig(model="tiny", device="cpu", warmup=False, upscaler_model=str(tmp_path / "x4"))
    )
    engine.load()
    source = finish(engine, imagine(steps=2, seeds=(1,), width=64, height=48)).images[0]
    seen = []
    hooks = [
        engine.model.upscaler.unet.register_forward_pre_hook(lambda _m, a: seen.append(a[0].shape[1])),
        engine.model.unet.register_forward_pre_hook(lambda _m, a: seen.append("base")),
    ]
    try:
        events = run_events(engine, upscale(source, steps=3))
    finally:
        for hook in hooks:
            hook.remove()
    done = events[-1]
    assert (done.images[0].width, done.images[0].height) == (128, 96)
    assert seen and set(seen) == {7}  # only the upscaler's UNet ran
    assert [e.step for e in events if isinstance(e, Progress)] == [1, 2, 3]
    cancelled = run_events(engine, upscale(source, steps=3), should_stop=lambda: True)
    assert cancelled[-1].reason == "cancelled"


def test_an_upscaler_that_is_not_one_is_refused(core, tmp_path):

    core.model.pipe.save_pretrained(tmp_path / "not-an-upscaler")
    with pytest.raises(ModelLoadError, match="StableDiffusionUpscalePipeline"):
        EngineCore(
            EngineConfig(
                model="tiny", device="cpu", warmup=False, upscaler_model=str(tmp_path / "not-an-upscaler")
            )
        ).load()


def test_quality_sets_the_refine_budget_and_a_low_one_still_refines(core, source):
    def denoising_steps(quality: float) -> int:
        events = run_events(core, upscale(source, steps=None, quality=quality))
        assert events[-1].images[0].width == 256, events[-1]
        return max(e.total for e in events if isinstance(e, Progress))

    # tiny: 8 steps at Subtle's 0.25; --quality .25 would leave 2 x 0.25 = no step without the floor
    assert denoising_steps(0.25) == 1
    assert denoising_steps(1.0) == 2
    assert denoising_steps(2.0) == 4
