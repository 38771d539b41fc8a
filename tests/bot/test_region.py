"""Vary (Region) in the job service: an upscaled image and a mask become a four-image inpaint job.

Real store, real moderation, the stand-in engine (the `env` fixture of tests/bot/conftest.py); the engine's
own inpainting is tests/engine/test_ops_inpaint.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bot.core.jobs import Action, JobError
from bot.core.region import MaskError
from bot.prompt import PromptError
from engine.api import InpaintRequest
from storage.models import JobStatus
from tests.support.job_service import ALICE, count_jobs, done


def png(width: int, height: int, box: tuple[int, int, int, int] | None) -> bytes:
    plane = np.zeros((height, width), dtype=np.uint8)
    if box:
        x0, y0, x1, y1 = box
        plane[y0:y1, x0:x1] = 255
    buffer = io.BytesIO()
    Image.fromarray(plane).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
async def upscaled(env):
    store, _engine, dispatcher, service = env
    [grid] = await done(dispatcher, store, await service.imagine(ALICE, "a red fox --seed 1"))
    single = await service.derive(ALICE, grid.id, Action.UPSCALE, index=1)
    return grid, single


async def test_a_mask_on_an_upscale_makes_a_region_job_with_four_seeds(env, upscaled):
    store, _engine, dispatcher, service = env
    _grid, single = upscaled
    w, h = single.cells[0].width, single.cells[0].height
    job = await service.region(ALICE, single.id, png(w, h, (0, 0, w // 2, h // 2)), "a blue fox")
    [job] = await done(dispatcher, store, [job])
    assert job.status == JobStatus.DONE and job.kind == "region" and len(job.cells) == 4
    assert job.parent_id == single.id and job.prompt == "a blue fox"
    request = await service.build_request(job)
    assert isinstance(request, InpaintRequest)
    region = np.frombuffer(request.mask.rgb, dtype=np.uint8).reshape(h, w, 3)[..., 0] > 0
    assert region[: h // 2, : w // 2].all() and region.sum() == (w // 2) * (h // 2)
    # Re-roll of a region job redraws the same region of the same image.
    again = await service.derive(ALICE, job.id, Action.REROLL)
    assert again.kind == "region" and again.parent_id == single.id
    assert (await service.build_request(again)).mask == request.mask


@pytest.mark.parametrize(
    ("mask", "reason"),
    [
        (lambda w, h: png(w + 1, h, (0, 0, 4, 4)), "they must match"),
        (lambda w, h: png(w, h, None), "the mask selects nothing"),
        (lambda w, h: png(w, h, (0, 0, w, h)), "covers the whole image"),
        (lambda w, h: b"not a picture", "not an image this bot can read"),
        (lambda w, h: b"", "the mask is empty"),
    ],
)
async def test_a_bad_mask_is_refused_and_stores_nothing(env, upscaled, mask, reason):
    store, _engine, _dispatcher, service = env
    _grid, single = upscaled
    before = await count_jobs(store)
    with pytest.raises(MaskError, match=reason):
        await service.region(ALICE, single.id, mask(single.cells[0].width, single.cells[0].height))
    assert await count_jobs(store) == before


async def test_region_needs_an_upscaled_image_and_a_valid_prompt(env, upscaled):
    *_, service = env
    grid, single = upscaled
    with pytest.raises(JobError, match="works on an upscaled image"):
        await service.region(ALICE, grid.id, png(8, 8, (0, 0, 2, 2)))
    w, h = single.cells[0].width, single.cells[0].height
    with pytest.raises(PromptError):
        await service.region(ALICE, single.id, png(w, h, (0, 0, 2, 2)), "a fox --chaos 500")
