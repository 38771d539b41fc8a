"""/blend: four images that mix 2-5 uploaded pictures, queued like any grid job.

The sources are kept under `inputs/` (`<job id>-<n>.png`) before the job row is written, so a
job queued when the bot stops still has them after the restart; the row names them in
`params["sources"]`. A refused submission removes them again: nothing half-made stays.

`dimensions` picks the shape, like Midjourney's: portrait 2:3, square 1:1, landscape 3:2, at
the model's native pixel area. The prompt is optional; without one the blend is drawn from
the pictures alone (an empty text condition).

The engine blends by latent interpolation (see `engine/ops/blend.py`): the VAE latents of the
sources are averaged and a strong img2img pass redraws the mixture.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from bot.core.blend_request import SOURCES_KEY
from bot.core.inputs import remove_input_images, save_input_image
from bot.core.rules import GRID_CELLS, PARSED_KEY, SEED_LIMIT, JobError, Requester, cell_seed
from bot.core.submission import SubmissionSteps
from bot.prompt import Prompt, PromptError, dimensions_for, expand_permutations, parse_prompt
from engine.api import BLEND_MAX_IMAGES, BLEND_MIN_IMAGES
from storage.models import Job, JobKind, JobStatus, new_job_id
from storage.records import JobFields, JSONValue

DIMENSIONS: dict[str, tuple[int, int]] = {"portrait": (2, 3), "square": (1, 1), "landscape": (3, 2)}
_PLACEHOLDER = "blend"  # the word that lets the parser read parameters given without a description


def blend_prompt(text: str | None, aspect: tuple[int, int]) -> Prompt:
    """The optional prompt of a blend, parsed, with the blend's aspect; `PromptError` if unfit."""
    text = " ".join((text or "").split())
    if not text:
        return Prompt("", aspect=aspect)
    if len(expand_permutations(text)) > 1:
        raise PromptError("/blend takes one prompt; leave out the `{…}` permutations")
    if text.startswith(("--", "—")):
        # Parameters alone (`--seed 7 --q .5`): a blend needs no words, so read them as the
        # parameters of an empty description.
        prompt = dataclasses.replace(parse_prompt(f"{_PLACEHOLDER} {text}"), text="", segments=[("", 1.0)])
    else:
        prompt = parse_prompt(text)
    if prompt.image_urls:
        raise PromptError("/blend blends the attached images; leave image links out of its prompt")
    if prompt.aspect != (1, 1):
        raise PromptError("/blend sets its shape with the dimensions option; leave --ar out of its prompt")
    if prompt.repeat != 1:
        raise PromptError("/blend makes one grid at a time; leave --repeat out of its prompt")
    return dataclasses.replace(prompt, aspect=aspect)


class BlendService:
    """Accepts /blend submissions; the job service turns their rows into `BlendRequest`s."""

    def __init__(self, jobs: SubmissionSteps) -> None:
        self.jobs = jobs

    async def blend(
        self,
        requester: Requester,
        images: Sequence[object],
        dimensions: str = "square",
        prompt_text: str | None = None,
    ) -> Job:
        """Queue one blend of `images` (`ImageData`). Raises `JobError`, `PromptError`,
        `BannedError`, `BlockedError` or `LimitError`; nothing is kept when it raises."""
        count = len(images)
        if count < BLEND_MIN_IMAGES:
            raise JobError(f"/blend needs at least {BLEND_MIN_IMAGES} images; you gave {count}.")
        if count > BLEND_MAX_IMAGES:
            raise JobError(f"/blend takes at most {BLEND_MAX_IMAGES} images; you gave {count}.")
        if dimensions not in DIMENSIONS:
            raise JobError(f"dimensions must be portrait, square or landscape, not {dimensions!r}.")
        jobs = self.jobs
        prompt = blend_prompt(prompt_text, DIMENSIONS[dimensions])
        # The checks every way of making jobs shares (SubmissionSteps), in their order.
        jobs._check_version(prompt)
        await jobs._check_moderation(requester, [prompt.text] if prompt.text else [], prompt_text)
        limits = await jobs._limits_for(requester)
        jobs.dispatcher.check_capacity(requester.user_id, 1, limits)
        speed = await jobs._member_params(requester, prompt.speed)  # Fast, Relax or Turbo, like /imagine
        info = jobs.info
        width, height = dimensions_for(prompt.aspect, info.native_width, info.native_height, info.size_step)
        seed = prompt.seed if prompt.seed is not None else jobs._new_seed() % SEED_LIMIT
        job_id = new_job_id()
        saved: list[JSONValue] = []  # paths under the data directory, as the row keeps them
        try:
            for number, image in enumerate(images, start=1):
                saved.append(await save_input_image(jobs.store.files, f"{job_id}-{number}", image))  # type: ignore[arg-type]
            fields = JobFields(
                id=job_id,
                kind=JobKind.BLEND.value,
                status=JobStatus.QUEUED.value,
                **jobs._author(requester),
                **jobs.dispatcher.owner.fields(),
                raw_prompt=prompt_text or "",
                prompt=str(prompt),
                params={
                    "seeds": [cell_seed(seed, i) for i in range(GRID_CELLS)],
                    PARSED_KEY: prompt.to_dict(),
                    SOURCES_KEY: saved,
                    "dimensions": dimensions,
                    **speed,
                },
                model=jobs.model_name,
                width=width,
                height=height,
                seed=seed,
            )
            job = await jobs.store.create_job(**fields)
        except BaseException:
            await remove_input_images(jobs.store.files, [str(path) for path in saved])
            raise
        await jobs._submit([job], limits)
        return job
