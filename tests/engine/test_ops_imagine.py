"""imagine on the tiny model: sizes, seeds, the prompt language's effects, stop, tile, cancel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.api import Failed, Finished, Progress, PromptSpec, Started
from tests.engine.conftest import (
    PROMPT,
    SEEDS,
    assert_same_as_stock,
    distance,
    fail,
    finish,
    imagine,
    pixels,
    run_events,
)


@pytest.mark.parametrize(
    ("width", "height"), [(128, 128), (160, 96), (96, 160), (224, 64), (32, 32), (16, 48)]
)
def test_four_cells_and_a_grid_at_the_requested_size(core, width, height):
    done = finish(core, imagine(width=width, height=height, steps=3))
    assert [(i.width, i.height) for i in done.images] == [(width, height)] * 4
    assert (done.grid.width, done.grid.height) == (2 * width, 2 * height)
    assert done.seeds == SEEDS
    # the grid holds the cells in reading order
    assert np.array_equal(pixels(done.grid)[height:, width:], pixels(done.images[3]))


def test_events_start_progress_finish_with_previews_and_timings(core):
    events = run_events(core, imagine(steps=4))
    assert isinstance(events[0], Started)
    progress = [e for e in events if isinstance(e, Progress)]
    assert [p.step for p in progress] == [1, 2, 3, 4]
    assert {p.total for p in progress} == {4}
    assert progress[0].preview is not None and progress[-1].preview is not None
    assert progress[0].preview.width < 2 * 128  # small, not a decoded image
    done = events[-1]
    assert isinstance(done, Finished)
    assert {"encode", "denoise", "decode", "total"} <= done.timings.keys()


def test_same_request_same_seed_same_bytes(core):
    a = finish(core, imagine(steps=4))
    b = finish(core, imagine(steps=4))
    assert [i.rgb for i in a.images] == [i.rgb for i in b.images]
    c = finish(core, imagine(steps=4, seeds=(1, 2, 3, 4)))
    assert a.images[0].rgb != c.images[0].rgb


def test_a_cell_reproduces_alone_from_its_seed(core):
    grid = finish(core, imagine(steps=4))
    alone = finish(core, imagine(steps=4, seeds=(SEEDS[2],)))
    assert len(alone.images) == 1 and alone.grid is None
    # batch 4 vs batch 1 may round the last bit differently on some CPUs, nothing more
    assert np.abs(pixels(alone.images[0]) - pixels(grid.images[2])).max() <= 2
    assert distance(alone.images[0], grid.images[1]) > 20


def test_no_and_segments_change_the_picture(core):
    base = finish(core, imagine(steps=4))
    no = finish(core, imagine(steps=4, prompt=PromptSpec.single(PROMPT.segments[0][0], negative=("fog",))))
    multi = finish(
        core, imagine(steps=4, prompt=PromptSpec(segments=((PROMPT.segments[0][0], 1.0), ("fog", 2.0))))
    )
    assert distance(no.images[0], base.images[0]) > 0.5
    assert distance(multi.images[0], base.images[0]) > 0.5
    assert distance(multi.images[0], no.images[0]) > 0.5


def _unet_batches(core, request) -> list[int]:
    seen: list[int] = []
    handle = core.model.unet.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(kwargs["encoder_hidden_states"].shape[0]), with_kwargs=True
    )
    try:
        finish(core, request)
    finally:
        handle.remove()
    return seen


def test_each_segment_reaches_the_unet_as_its_own_conditioning(core):
    plain = _unet_batches(core, imagine(steps=2))
    assert plain == [4 * 2, 4 * 2]  # classifier-free guidance: unconditional + prompt, per cell
    three = PromptSpec(segments=(("castle", 1.0), ("sunset", 2.0), ("ruins", -0.5)), negative=("fog", "rain"))
    batches = _unet_batches(core, imagine(steps=2, prompt=three))
    assert batches == [4 * (1 + 5)] * 2  # unconditional + 3 segments + 2 --no terms


def test_segment_weights_are_relative(core):
    one = finish(core, imagine(steps=3, prompt=PromptSpec(segments=(("castle", 1.0), ("sunset", 2.0)))))
    same = finish(core, imagine(steps=3, prompt=PromptSpec(segments=(("castle", 2.0), ("sunset", 4.0)))))
    other = finish(core, imagine(steps=3, prompt=PromptSpec(segments=(("castle", 2.0), ("sunset", 1.0)))))
    assert np.abs(pixels(one.images[0]) - pixels(same.images[0])).max() <= 2
    assert distance(one.images[0], other.images[0]) > 0.5


def test_prompt_without_positive_weight_is_refused(core):
    failed = fail(core, imagine(prompt=PromptSpec(segments=(("castle", -1.0),))))
    assert "positive weight" in failed.reason
    assert not failed.retryable


def test_chaos_moves_cells_further_with_more_chaos(core):
    base = finish(core, imagine(steps=3))
    some = finish(core, imagine(steps=3, chaos=25))
    lots = finish(core, imagine(steps=3, chaos=100))
    for i in range(4):
        assert 0 < distance(some.images[i], base.images[i]) < distance(lots.images[i], base.images[i])
    again = finish(core, imagine(steps=3, chaos=100))
    assert [i.rgb for i in again.images] == [i.rgb for i in lots.images]


def test_stylize_scales_the_house_style_and_raw_drops_it(core):
    raw = finish(core, imagine(steps=3, style="raw"))
    zero = finish(core, imagine(steps=3, stylize=0))
    default = finish(core, imagine(steps=3))
    high = finish(core, imagine(steps=3, stylize=1000))
    assert raw.images[0].rgb == zero.images[0].rgb
    assert 0 < distance(default.images[0], raw.images[0]) < distance(high.images[0], raw.images[0])


def test_weird_changes_the_picture(core):
    base = finish(core, imagine(steps=3))
    weird = finish(core, imagine(steps=3, weird=1500))
    assert distance(weird.images[0], base.images[0]) > 5


def test_quality_scales_the_steps(core):
    def steps(**kw) -> int:
        return max(e.step for e in run_events(core, imagine(steps=4, **kw)) if isinstance(e, Progress))

    assert steps(quality=0.5) == 2
    assert steps(quality=2) == 8


def test_stop_ends_denoising_early(core):
    full = run_events(core, imagine(steps=8))
    half = run_events(core, imagine(steps=8, stop=50))
    assert max(e.step for e in half if isinstance(e, Progress)) == 4
    assert {e.total for e in half if isinstance(e, Progress)} == {4}
    assert isinstance(half[-1], Finished)
    assert half[-1].images[0].rgb != full[-1].images[0].rgb


def _seams(image) -> list[tuple[float, float]]:
    """(wrap-around seam, sharpest interior join) horizontally and vertically, mean abs difference."""
    a = pixels(image)
    out = []
    for axis in (1, 0):
        joins = np.abs(np.diff(a, axis=axis)).mean(axis=tuple(i for i in range(3) if i != axis))
        first, last = np.take(a, 0, axis=axis), np.take(a, -1, axis=axis)
        out.append((float(np.abs(last - first).mean()), float(joins.max())))
    return out


def test_tile_wraps_seamlessly(core):
    tiled = finish(core, imagine(steps=4, tile=True, width=160, height=96))
    plain = finish(core, imagine(steps=4, width=160, height=96))
    for image in tiled.images:
        for seam, interior in _seams(image):
            assert seam <= 1.1 * interior  # the wrap-around join looks like any other join
    for image in plain.images:  # without --tile the edges do not meet: the check above can fail
        for seam, interior in _seams(image):
            assert seam > 2 * interior
    # the resident weights are back to normal afterwards
    assert all(m.padding_mode == "zeros" for m in core.model.unet.modules() if isinstance(m, torch.nn.Conv2d))
    again = finish(core, imagine(steps=4, width=160, height=96))
    assert again.images[0].rgb == plain.images[0].rgb


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"width": 120}, "multiple of 16"),
        ({"width": 40, "height": 24}, "multiple of 16"),
        ({"width": 8, "height": 8}, "too small"),
        ({"width": 0}, "too small"),
        ({"height": -16}, "too small"),
        ({"width": 64.0}, "whole numbers"),
        ({"width": 1024, "height": 1024}, "maximum"),
        ({"seeds": ()}, "no seeds"),
        ({"seeds": (-1,)}, "out of range"),
        ({"chaos": 101}, "chaos"),
        ({"stop": 5}, "stop"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_requests_fail_clearly_and_the_engine_stays_healthy(core, fields, message):
    failed = fail(core, imagine(**fields))
    assert message in failed.reason
    assert not failed.retryable
    assert isinstance(run_events(core, imagine(steps=1))[-1], Finished)


def test_cancel_stops_within_one_step(core):
    events = []
    polls = []

    def should_stop() -> bool:
        polls.append(1)
        return any(isinstance(e, Progress) and e.step >= 2 for e in events)

    core.run(imagine(steps=20), events.append, should_stop)
    assert isinstance(events[-1], Failed) and events[-1].reason == "cancelled"
    assert max(e.step for e in events if isinstance(e, Progress)) == 2
    assert isinstance(run_events(core, imagine(steps=1))[-1], Finished)


def test_image_prompt_pulls_towards_the_image(core):
    source = finish(core, imagine(steps=4, seeds=(7,))).images[0]
    other = finish(core, imagine(steps=4, seeds=(8,))).images[0]
    done = finish(core, imagine(steps=4, init_image=source, image_weight=2.0))
    for image in done.images:
        assert distance(image, source) < distance(image, other)


def test_a_strong_image_prompt_at_low_quality_still_denoises(core):
    # --iw 3 keeps 3/4 of the image (strength 0.25); --quality .25 of 8 steps is 2, which would
    # leave no denoising step at all without the img2img floor.
    source = finish(core, imagine(steps=4, seeds=(7,), width=64, height=64)).images[0]
    events = run_events(core, imagine(seeds=(9,), init_image=source, image_weight=3.0, quality=0.25))
    assert isinstance(events[-1], Finished), events[-1]
    assert max(e.total for e in events if isinstance(e, Progress)) == 1


def test_a_plain_prompt_gives_the_same_pixels_as_the_stock_diffusers_pipeline(core):
    # Our loop is diffusers' text-to-image loop; composable guidance with one segment is plain CFG.
    ours = finish(core, imagine(steps=4, style="raw", guidance=6.0))
    assert_same_as_stock(core, ours, steps=4, width=128, height=128, seeds=SEEDS)
