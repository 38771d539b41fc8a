"""vary: four new images near the source; Subtle stays closer than Strong."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import Finished, ImageData, Progress, VaryRequest
from tests.engine.conftest import PROMPT, distance, fail, finish, imagine, run_events


@pytest.fixture(scope="module")
def sources(core) -> tuple[ImageData, ImageData]:
    done = finish(core, imagine(steps=4, seeds=(11, 12)))
    return done.images[0], done.images[1]


def vary(source: ImageData, **fields) -> VaryRequest:
    base = {"job_id": "vary", "source": source, "prompt": PROMPT, "seeds": (5, 6, 7, 8), "steps": 6}
    base.update(fields)
    return VaryRequest(**base)


def test_vary_is_closer_to_its_source_than_to_an_unrelated_image(core, sources):
    source, unrelated = sources
    done = finish(core, vary(source))
    assert len(done.images) == 4 and done.grid is not None
    assert done.seeds == (5, 6, 7, 8)
    for image in done.images:
        assert (image.width, image.height) == (source.width, source.height)
        assert distance(image, source) < distance(image, unrelated)
    assert len({i.rgb for i in done.images}) == 4  # four different variations


def test_subtle_stays_closer_than_strong(core, sources):
    source, _ = sources
    subtle = finish(core, vary(source, strength="subtle"))
    strong = finish(core, vary(source, strength="strong"))
    assert np.mean([distance(i, source) for i in subtle.images]) < np.mean(
        [distance(i, source) for i in strong.images]
    )


def test_an_explicit_strength_is_used(core, sources):
    source, _ = sources
    subtle = finish(core, vary(source, strength="subtle"))
    explicit = finish(core, vary(source, strength=core.model.preset.vary_subtle))
    assert [i.rgb for i in explicit.images] == [i.rgb for i in subtle.images]
    assert fail(core, vary(source, strength=1.5)).reason.startswith("vary strength must be between")
    assert "vary strength" in fail(core, vary(source, strength="wild")).reason


def test_a_source_off_the_size_grid_is_varied_at_its_own_size(core, sources):
    # An upload or an odd upscale: the model works on whole size steps, the user gets the source's size.
    odd = ImageData.from_pil(sources[0].to_pil().resize((100, 70)))
    done = finish(core, vary(odd, seeds=(1, 2)))
    assert isinstance(done, Finished)
    assert [(i.width, i.height) for i in done.images] == [(100, 70)] * 2
    assert distance(done.images[0], odd) < distance(
        done.images[0], ImageData.from_pil(sources[1].to_pil().resize((100, 70)))
    )


def test_bad_sources_fail_clearly(core):
    tiny = ImageData(width=8, height=8, rgb=bytes(8 * 8 * 3))
    assert "at least 16 pixels" in fail(core, vary(tiny)).reason
    huge = ImageData(width=1024, height=1024, rgb=bytes(1024 * 1024 * 3))
    assert "maximum" in fail(core, vary(huge)).reason


def test_quality_scales_the_variation_steps(core, sources):
    source, _ = sources

    def denoising_steps(quality: float) -> int:
        events = run_events(core, vary(source, steps=None, strength=0.5, quality=quality))
        assert isinstance(events[-1], Finished), events[-1]
        return max(e.total for e in events if isinstance(e, Progress))

    assert (denoising_steps(0.5), denoising_steps(1.0), denoising_steps(2.0)) == (2, 4, 8)
