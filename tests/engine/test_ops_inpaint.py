"""inpaint (Vary (Region)): the region is redrawn, every pixel outside it is the source's own."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import ImageData, InpaintRequest
from tests.engine.conftest import PROMPT, fail, finish, imagine, pixels


@pytest.fixture(scope="module")
def source(core) -> ImageData:
    return finish(core, imagine(steps=4, seeds=(31,), width=128, height=96)).images[0]


def mask_of(width: int, height: int, box: tuple[int, int, int, int]) -> ImageData:
    region = np.zeros((height, width, 3), dtype=np.uint8)
    x0, y0, x1, y1 = box
    region[y0:y1, x0:x1] = 255
    return ImageData(width, height, region.tobytes())


def inpaint(source: ImageData, mask: ImageData, **fields) -> InpaintRequest:
    base = {"job_id": "region", "source": source, "mask": mask, "prompt": PROMPT, "seeds": (1, 2), "steps": 4}
    base.update(fields)
    return InpaintRequest(**base)


def test_the_region_is_redrawn_and_the_rest_is_unchanged(core, source):
    done = finish(core, inpaint(source, mask_of(128, 96, (32, 16, 96, 64))))
    assert len(done.images) == 2 and done.seeds == (1, 2)
    before = pixels(source)
    for image in done.images:
        assert (image.width, image.height) == (128, 96)
        after = pixels(image)
        outside = np.ones((96, 128), dtype=bool)
        outside[16:64, 32:96] = False
        assert np.array_equal(after[outside], before[outside])
        assert np.abs(after[16:64, 32:96] - before[16:64, 32:96]).mean() > 5  # the region changed
    assert done.images[0].rgb != done.images[1].rgb  # each seed its own


def test_a_source_of_odd_size_keeps_its_size_and_its_pixels(core, source):
    odd = ImageData.from_pil(source.to_pil().crop((0, 0, 121, 90)))
    done = finish(core, inpaint(odd, mask_of(121, 90, (10, 10, 50, 40)), seeds=(5,)))
    (image,) = done.images
    assert (image.width, image.height) == (121, 90)
    outside = np.ones((90, 121), dtype=bool)
    outside[10:40, 10:50] = False
    assert np.array_equal(pixels(image)[outside], pixels(odd)[outside])


@pytest.mark.parametrize(
    ("mask", "reason"),
    [
        (lambda: mask_of(64, 64, (0, 0, 10, 10)), "the mask is 64x64 but the image is 128x96"),
        (lambda: mask_of(128, 96, (0, 0, 0, 0)), "the mask selects nothing"),
        (lambda: mask_of(128, 96, (0, 0, 128, 96)), "the mask covers the whole image"),
    ],
)
def test_a_bad_mask_is_refused_with_the_reason(core, source, mask, reason):
    assert reason in fail(core, inpaint(source, mask())).reason
