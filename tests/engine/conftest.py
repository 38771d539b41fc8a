"""Shared fixtures for the engine tests: one loaded tiny model per session, and job helpers.

Tests run a real `EngineCore` on the `tiny` presets (real diffusers components, CPU). One torch
thread: the CI machine has two cores shared by the whole suite, and oversubscribed OpenMP
threads are many times slower than one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import api
from engine.core import EngineCore

torch.set_num_threads(1)

PROMPT = api.PromptSpec.single("a red lighthouse at dusk")
SEEDS = (101, 202, 303, 404)


@pytest.fixture(scope="session")
def core() -> EngineCore:
    engine = EngineCore(api.EngineConfig(model="tiny", device="cpu", warmup=False, max_pixels=512 * 512))
    engine.load()
    return engine


@pytest.fixture(scope="session")
def xl_core() -> EngineCore:
    engine = EngineCore(api.EngineConfig(model="tiny-xl", device="cpu", warmup=False, max_pixels=512 * 512))
    engine.load()
    return engine


def run_events(
    core: EngineCore, request: api.EngineRequest, should_stop=lambda: False
) -> list[api.EngineEvent]:
    events: list[api.EngineEvent] = []
    core.run(request, events.append, should_stop)
    return events


def finish(core: EngineCore, request: api.EngineRequest) -> api.Finished:
    events = run_events(core, request)
    last = events[-1]
    assert isinstance(last, api.Finished), f"expected Finished, got {last!r}"
    return last


def fail(core: EngineCore, request: api.EngineRequest) -> api.Failed:
    events = run_events(core, request)
    last = events[-1]
    assert isinstance(last, api.Failed), f"expected Failed, got {type(last).__name__}"
    return last


def imagine(**fields) -> api.ImagineRequest:
    base = {"job_id": "job", "prompt": PROMPT, "seeds": SEEDS, "width": 128, "height": 128}
    base.update(fields)
    return api.ImagineRequest(**base)


def pixels(image: api.ImageData) -> np.ndarray:
    return np.frombuffer(image.rgb, dtype=np.uint8).reshape(image.height, image.width, 3).astype(np.float64)


def distance(a: api.ImageData, b: api.ImageData) -> float:
    """Mean absolute pixel difference (0-255)."""
    return float(np.abs(pixels(a) - pixels(b)).mean())


def assert_same_as_stock(core, ours, *, steps: int, width: int, height: int, seeds) -> None:
    """`ours` (a plain prompt at guidance 6) has the pixels of the stock diffusers pipeline run on
    the same weights, steps, size and seeds, to within one level of rounding."""
    stock = core.model.pipe(
        prompt=PROMPT.segments[0][0],
        num_inference_steps=steps,
        guidance_scale=6.0,
        height=height,
        width=width,
        num_images_per_prompt=4,
        generator=[torch.Generator("cpu").manual_seed(s) for s in seeds],
        output_type="np",
    ).images
    for mine, theirs in zip(ours.images, stock, strict=True):
        assert np.abs(pixels(mine) - np.round(theirs * 255)).max() <= 1
