"""`dimensions_for`: the pixel size an `--ar` becomes on a given model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.prompt import dimensions_for


@pytest.mark.parametrize(
    ("aspect", "native", "size"),
    [
        ((1, 1), (512, 512), (512, 512)),
        ((1, 1), (1024, 1024), (1024, 1024)),
        ((16, 9), (512, 512), (704, 384)),
        ((9, 16), (512, 512), (384, 704)),
        ((4, 1), (512, 512), (1024, 256)),
        ((1, 4), (512, 512), (256, 1024)),
        # the sizes SDXL was trained on
        ((16, 9), (1024, 1024), (1344, 768)),
        ((9, 16), (1024, 1024), (768, 1344)),
        ((1, 1), (768, 512), (640, 640)),
    ],
)
def test_known_sizes(aspect: tuple[int, int], native: tuple[int, int], size: tuple[int, int]) -> None:
    assert dimensions_for(aspect, native[0], native[1], 64) == size


def test_sixteen_by_nine_on_a_512_model_is_within_five_percent() -> None:
    width, height = dimensions_for((16, 9), 512, 512, 64)
    assert abs((width / height) / (16 / 9) - 1) < 0.05


@pytest.mark.parametrize(
    "args",
    [((0, 1), 512, 512, 64), ((1, -2), 512, 512, 64), ((1, 1), 0, 512, 64), ((1, 1), 512, 512, 0)],
)
def test_nonsense_sizes_are_refused(args: tuple) -> None:
    with pytest.raises(ValueError):
        dimensions_for(*args)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 64),
    st.integers(1, 64),
    st.sampled_from(
        [(512, 512, 64), (768, 768, 64), (1024, 1024, 64), (512, 768, 64), (1024, 1024, 8), (64, 64, 8)]
    ),
)
def test_step_multiples_near_the_ratio_and_the_native_area(
    w: int, h: int, model: tuple[int, int, int]
) -> None:
    if w > 4 * h or h > 4 * w:
        return
    native_w, native_h, step = model
    width, height = dimensions_for((w, h), native_w, native_h, step)
    assert width % step == 0 and height % step == 0
    assert width >= step and height >= step
    # One step is the resolution we can choose with: the ratio is off by less than one step of the
    # model's side, and the area by less than two.
    coarseness = step / math.sqrt(native_w * native_h)
    assert abs((width / height) / (w / h) - 1) < coarseness
    assert abs(width * height / (native_w * native_h) - 1) <= 2 * coarseness + 1e-9
    # the transposed ratio gives the transposed size
    assert dimensions_for((h, w), native_w, native_h, step) == (height, width)
