"""upscale: 2x by resize + refine, tiled when large, refused past the engine's maximum."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine.api import EngineConfig, ImageData, Progress, UpscaleRequest
from engine.core import EngineCore
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
