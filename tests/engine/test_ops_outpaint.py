"""outpaint: zoom keeps the source in the centre, pan keeps its side, square extends the short side."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInpaintPipeline, UNet2DConditionModel
from PIL import Image

from engine.api import EngineConfig, ImageData, OutpaintRequest
from engine.builders import build_tiny
from engine.core import EngineCore
from engine.ops.outpaint import plan_pan, plan_zoom, prefill
from tests.engine.conftest import PROMPT, fail, finish, imagine, pixels


@pytest.fixture(scope="module")
def source(core) -> ImageData:
    return finish(core, imagine(steps=4, seeds=(31,), width=128, height=96)).images[0]


def outpaint(source: ImageData, **fields) -> OutpaintRequest:
    base = {"job_id": "out", "source": source, "prompt": PROMPT, "seeds": (1, 2, 3, 4), "steps": 4}
    base.update(fields)
    return OutpaintRequest(**base)


def _shrunk(source: ImageData, width: int, height: int) -> np.ndarray:
    return np.asarray(source.to_pil().resize((width, height), Image.Resampling.LANCZOS), dtype=np.float64)


def test_zoom_out_2x_keeps_the_size_with_the_source_shrunk_into_the_centre(core, source):
    done = finish(core, outpaint(source, zoom=2.0))
    assert len(done.images) == 4 and done.grid is not None
    expected = _shrunk(source, 64, 48)
    for image in done.images:
        assert (image.width, image.height) == (128, 96)
        a = pixels(image)
        assert np.array_equal(a[24:72, 32:96], expected)  # the kept pixels come back unchanged
        border = np.concatenate([a[:24].reshape(-1, 3), a[72:].reshape(-1, 3), a[:, :32].reshape(-1, 3)])
        assert border.std() > 5  # the new area was painted, not left flat
    assert len({i.rgb for i in done.images}) == 4


def test_zoom_out_1_5x(core, source):
    done = finish(core, outpaint(source, zoom=1.5, seeds=(1,)))
    (image,) = done.images
    assert (image.width, image.height) == (128, 96)
    canvas = plan_zoom(128, 96, 1.5, None, 16)
    assert (canvas.inner_width, canvas.inner_height) == (85, 64)
    a = pixels(image)
    kept = a[canvas.y : canvas.y + 64, canvas.x : canvas.x + 85]
    assert np.array_equal(kept, _shrunk(source, 85, 64))


def test_custom_zoom_may_change_the_aspect_ratio(core, source):
    done = finish(core, outpaint(source, zoom=1.2, aspect=(1, 1), seeds=(1,)))
    (image,) = done.images
    assert image.width == image.height == 112  # about the same pixel count, square
    canvas = plan_zoom(128, 96, 1.2, (1, 1), 16)
    a = pixels(image)
    kept = a[canvas.y : canvas.y + canvas.inner_height, canvas.x : canvas.x + canvas.inner_width]
    assert np.array_equal(kept, _shrunk(source, canvas.inner_width, canvas.inner_height))


@pytest.mark.parametrize(
    ("direction", "size", "box"),
    [
        ("left", (192, 96), (slice(0, 96), slice(64, 192))),
        ("right", (192, 96), (slice(0, 96), slice(0, 128))),
        ("up", (128, 144), (slice(48, 144), slice(0, 128))),
        ("down", (128, 144), (slice(0, 96), slice(0, 128))),
    ],
)
def test_pan_grows_the_canvas_by_half_and_keeps_the_source_side(core, source, direction, size, box):
    done = finish(core, outpaint(source, pan=direction, seeds=(1, 2)))
    for image in done.images:
        assert (image.width, image.height) == size
        assert np.array_equal(pixels(image)[box], pixels(source))


def test_pan_past_the_maximum_is_refused(core):
    wide = ImageData(width=512, height=448, rgb=bytes(512 * 448 * 3))
    failed = fail(core, outpaint(wide, pan="left"))
    assert "768x448" in failed.reason and "maximum" in failed.reason


def test_make_square_extends_the_short_side(core, source):
    done = finish(core, outpaint(source, square=True, seeds=(1,)))
    (image,) = done.images
    assert (image.width, image.height) == (128, 128)
    assert np.array_equal(pixels(image)[16:112], pixels(source))
    square = ImageData(width=64, height=64, rgb=bytes(64 * 64 * 3))
    assert "already square" in fail(core, outpaint(square, square=True)).reason


def test_the_new_area_is_prefilled_from_the_source_edges(source):
    # What the inpainting starts from: the source's edge pixels stretched outwards and blurred,
    # masked as new; the kept box unmasked and exact.
    canvas = plan_pan(128, 96, "right", 16, 512 * 512)
    filled, mask = prefill(source.to_pil(), canvas)
    a = np.asarray(filled, dtype=np.float64)
    assert mask[:, :128].sum() == 0 and mask[:, 128:].min() == 1
    assert np.array_equal(a[:, :128], pixels(source))
    edge = pixels(source)[:, -1]
    # each row of the new strip stays near its own row's edge colour (blurred a little)
    assert np.abs(a[:, 128:136] - edge[:, None]).mean() < np.abs(a[:, 128:136] - edge[::-1][:, None]).mean()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"zoom": 2.5}, "zoom must be between 1 and 2"),
        ({"zoom": 1.0}, "nothing to fill"),
        ({"zoom": 2.0, "pan": "left"}, "exactly one"),
        ({}, "exactly one"),
        ({"pan": "sideways"}, "pan direction"),
        ({"pan": "left", "aspect": (1, 1)}, "only with zoom"),
        ({"zoom": 1.5, "aspect": (9, 1)}, "aspect ratio"),
    ],
)
def test_bad_outpaint_requests_fail_clearly(core, source, fields, message):
    assert message in fail(core, outpaint(source, **fields)).reason


def test_a_configured_inpainting_model_does_the_outpainting(core, source, tmp_path):

    base = build_tiny()
    torch.manual_seed(0)
    unet = UNet2DConditionModel.from_config({**base.unet.config, "in_channels": 9})  # latents + mask + image
    components = {**base.components, "unet": unet}
    StableDiffusionInpaintPipeline(**components, requires_safety_checker=False).save_pretrained(
        tmp_path / "inpaint"
    )
    engine = EngineCore(
        EngineConfig(model="tiny", device="cpu", warmup=False, inpaint_model=str(tmp_path / "inpaint"))
    )
    engine.load()
    seen = []
    hooks = [
        engine.model.inpaint_override.unet.register_forward_pre_hook(
            lambda _m, a: seen.append(a[0].shape[1])
        ),
        engine.model.unet.register_forward_pre_hook(lambda _m, a: seen.append("base")),
    ]
    try:
        done = finish(engine, outpaint(source, zoom=2.0, seeds=(1, 2)))
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and set(seen) == {9}  # only the inpainting UNet ran, with mask and image channels
    for image in done.images:
        assert np.array_equal(pixels(image)[24:72, 32:96], _shrunk(source, 64, 48))


@pytest.mark.parametrize(
    ("fields", "size", "box"),
    [
        ({"pan": "right"}, (150, 70), (0, 0)),
        ({"pan": "up"}, (100, 105), (0, 35)),
        ({"square": True}, (100, 100), (0, 15)),
        ({"zoom": 2.0}, (100, 70), None),
    ],
)
def test_a_source_off_the_size_grid_keeps_its_own_size_and_pixels(core, source, fields, size, box):
    # The model works on whole size steps; the result is brought back to the source's own pixels.
    odd = ImageData.from_pil(source.to_pil().resize((100, 70)))
    done = finish(core, outpaint(odd, seeds=(1,), **fields))
    image = done.images[0]
    assert (image.width, image.height) == size
    if box is not None:
        x, y = box
        assert np.array_equal(pixels(image)[y : y + 70, x : x + 100], pixels(odd))
