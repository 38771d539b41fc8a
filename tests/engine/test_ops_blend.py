"""blend: four images mixing 2-5 sources by latent interpolation and a strong img2img pass."""

from __future__ import annotations

import torch
from PIL import Image

from engine.api import BlendRequest, ImageData, PromptSpec
from engine.ops.blend import mix_latents
from tests.engine.conftest import distance, fail, finish


def flat(colour: tuple[int, int, int], width: int = 96, height: int = 64) -> ImageData:
    return ImageData.from_pil(Image.new("RGB", (width, height), colour))


RED, BLUE, GREEN = flat((220, 30, 30)), flat((30, 30, 220), 64, 96), flat((30, 200, 40))


def blend(*sources: ImageData, **fields) -> BlendRequest:
    base = {
        "job_id": "blend",
        "sources": sources,
        "prompt": PromptSpec.single(""),
        "seeds": (1, 2, 3, 4),
        "width": 128,
        "height": 128,
        "steps": 4,
    }
    base.update(fields)
    return BlendRequest(**base)


def test_mixed_latents_keep_the_sources_spread_and_lie_between_them():
    torch.manual_seed(0)
    a, b = torch.randn(1, 4, 8, 8) * 2 + 1, torch.randn(1, 4, 8, 8) * 2 - 1
    mixed = mix_latents(torch.cat([a, b]))
    assert mixed.shape == (1, 4, 8, 8)
    # A plain mean would have about 1/sqrt(2) of the spread; the mix keeps the sources'.
    assert abs(float(mixed.std(dim=(2, 3)).mean()) - 2.0) < 0.3
    assert abs(float(mixed.mean())) < 0.2  # centred between +1 and -1
    assert torch.allclose(mixed, mix_latents(torch.cat([b, a])))


def test_a_blend_is_four_images_of_the_asked_size_with_a_grid(core):
    done = finish(core, blend(RED, BLUE, width=128, height=64))
    assert len(done.images) == 4 and done.seeds == (1, 2, 3, 4)
    assert all((i.width, i.height) == (128, 64) for i in done.images)
    assert done.grid is not None and (done.grid.width, done.grid.height) == (256, 128)
    assert len({i.rgb for i in done.images}) == 4


def test_the_sources_decide_the_blend(core):
    red_blue = finish(core, blend(RED, BLUE))
    blue_red = finish(core, blend(BLUE, RED))
    red_green = finish(core, blend(RED, GREEN))
    # The order of the sources does not matter; which sources they are does.
    assert all(distance(a, b) < 0.5 for a, b in zip(red_blue.images, blue_red.images, strict=True))
    assert all(distance(a, b) > 1.0 for a, b in zip(red_blue.images, red_green.images, strict=True))


def test_too_few_or_too_many_sources_are_refused_with_the_limits(core):
    assert "2 to 5 images, got 1" in fail(core, blend(RED)).reason
    assert "2 to 5 images, got 6" in fail(core, blend(RED, BLUE, GREEN, RED, BLUE, GREEN)).reason


def test_a_source_over_the_engine_maximum_is_refused(core):
    huge = flat((1, 2, 3), 1024, 1024)
    assert "maximum" in fail(core, blend(RED, huge)).reason
