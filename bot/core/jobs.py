"""The job service: what a user asks for becomes job rows, and a job row becomes an engine request.

Both front ends (Discord and the `imagine` console) come through here, so a prompt, a button
and a console subcommand mean the same thing everywhere. Everything is checked before the first
row is written (prompt, version, moderation, limits, the parent and the cell index): bad input
gets a clear error and changes nothing.

Seeds: a grid's seed is `--seed` or a random number in 0..4294967295; cell i draws with
`cell_seed(seed, i) = (seed + i) % 2**32`, and each image row stores its own seed, so any single
image can be reproduced. `--repeat` k > 0 with a fixed seed uses `seed + 4k` (four cells apart),
so the repeats differ; permutations share a `--seed` so they compare like for like. Without
`--seed`, every job (each permutation, each repeat) draws its own random seed, like Midjourney.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bot.core.derived_jobs import DerivedJobSteps
from bot.core.engine_requests import build_request
from bot.core.inputs import remove_input_images
from bot.core.limits import LimitError
from bot.core.member_settings import member_prompts
from bot.core.references import reference_params, reference_urls, save_references
from bot.core.rules import (
    CONSOLE_QUEUE_LIMIT,
    GRID_CELLS,
    PAN_DIRECTIONS,
    PARSED_KEY,
    SEED_LIMIT,
    Action,
    CellIndexError,
    JobError,
    JobHiddenError,
    JobNotDoneError,
    ModerationCheck,
    Requester,
    UnknownJobError,
    accepted_prompt,
    cell_seed,
    prompts_with_suffix,
)
from bot.prompt import (
    PromptError,
    dimensions_for,
)
from engine.api import (
    EngineRequest,
    ImageData,
)
from storage.models import Job, JobKind, JobStatus, new_job_id
from storage.records import JobFields

log = logging.getLogger(__name__)

# The rules are imported from here by older code; `bot.core.rules` is their home.
__all__ = [
    "CONSOLE_QUEUE_LIMIT",
    "GRID_CELLS",
    "PAN_DIRECTIONS",
    "PARSED_KEY",
    "SEED_LIMIT",
    "Action",
    "CellIndexError",
    "JobError",
    "JobHiddenError",
    "JobNotDoneError",
    "JobService",
    "LimitError",
    "ModerationCheck",
    "Requester",
    "UnknownJobError",
    "accepted_prompt",
    "cell_seed",
    "prompts_with_suffix",
]


class JobService(DerivedJobSteps):
    """Creates job rows from prompts and actions, and engine requests from job rows.

    The checks and the hand-over to the dispatcher are `SubmissionSteps` (bot/core/submission.py),
    the jobs made from an earlier one (buttons, console subcommands) `DerivedJobSteps`
    (bot/core/derived_jobs.py); the engine request is built by bot/core/engine_requests.py.
    """

    # -----------------------------------------------------------------------------------------
    # /imagine
    # -----------------------------------------------------------------------------------------

    async def imagine(
        self,
        requester: Requester,
        raw_prompt: str,
        init_image: ImageData | None = None,
        *,
        parent_id: str | None = None,
        references: Mapping[str, ImageData] | None = None,
    ) -> list[Job]:
        """Queue the jobs for one prompt: one per permutation and per `--repeat`, in that order.

        `parent_id`: the job the prompt came from (a /shorten or /describe answer), for lineage.
        `references`: the `--sref`/`--oref` pictures by link, fetched by the front end (see
        `reference_urls`).

        Raises `PromptError`, `BannedError`, `BlockedError` (after recording a `blocked` job for
        the moderators) or `LimitError`; nothing is queued when any of them is raised.
        """
        text = " ".join(raw_prompt.split())
        if not text:
            raise PromptError("the prompt is empty; describe the image you want")
        prompts, member = await member_prompts(
            self.store, requester.user_id, requester.guild_id, text, has_image=init_image is not None
        )
        for prompt in prompts:
            self._check_version(prompt)
            if prompt.image_urls and init_image is None:
                raise PromptError(
                    "image prompts need the image itself: attach it to /imagine in Discord "
                    "(the console does not download image URLs)"
                )
        speeds = {p.speed: await self._member_params(requester, p.speed, member) for p in prompts}
        urls = reference_urls(self.info, prompts)  # refused at once when the engine cannot use them
        pictures = {url: (references or {})[url] for url in urls if url in (references or {})}
        if len(pictures) < len(urls):
            missing = next(url for url in urls if url not in pictures)
            raise PromptError(f"the reference picture {missing} was not fetched; please try again")
        await self._check_moderation(requester, [p.text for p in prompts] + [raw_prompt], raw_prompt)
        limits = await self._limits_for(requester)
        count = sum(max(1, p.repeat) for p in prompts)
        self.dispatcher.check_capacity(requester.user_id, count, limits)

        # The image prompt is written first, under the first job's id, so that every row can name
        # it and all the rows go in together: one transaction, all of them or none.
        first_id = new_job_id()
        saved_image = await self._save_init_image(first_id, init_image) if init_image is not None else None
        kept = [saved_image] if saved_image else []
        try:
            saved_references = await save_references(self.store.files, first_id, pictures)
        except BaseException:
            await remove_input_images(self.store.files, kept)
            raise
        kept += list(saved_references.values())
        specs: list[JobFields] = []
        for prompt in prompts:
            width, height = dimensions_for(
                prompt.aspect, self.info.native_width, self.info.native_height, self.info.size_step
            )
            for repeat in range(max(1, prompt.repeat)):
                if prompt.seed is not None:
                    seed = (prompt.seed + GRID_CELLS * repeat) % SEED_LIMIT
                else:
                    seed = self._new_seed()
                specs.append(
                    JobFields(
                        kind=JobKind.IMAGINE.value,
                        status=JobStatus.QUEUED.value,
                        **self._author(requester),
                        **self.dispatcher.owner.fields(),
                        raw_prompt=raw_prompt,
                        prompt=str(prompt),
                        params={
                            "seeds": [cell_seed(seed, i) for i in range(GRID_CELLS)],
                            PARSED_KEY: prompt.to_dict(),
                            **({"init_image": saved_image} if saved_image else {}),
                            **speeds[prompt.speed],
                            **reference_params(prompt, saved_references),
                        },
                        model=self.model_name,
                        width=width,
                        height=height,
                        seed=seed,
                        parent_id=parent_id,
                    )
                )
        specs[0]["id"] = first_id
        try:
            jobs = await self.store.create_jobs(specs)
        except BaseException:
            await remove_input_images(self.store.files, kept)
            raise
        await self._submit(jobs, limits)
        return jobs

    async def reference_urls(self, requester: Requester, raw_prompt: str) -> list[str]:
        """The `--sref`/`--oref` links a front end must fetch before `imagine` (with the member's
        suffix); `PromptError` for a bad prompt, or when the engine has no IP-Adapter."""
        text = " ".join(raw_prompt.split())
        if not text:
            return []
        prompts, _ = await member_prompts(
            self.store, requester.user_id, requester.guild_id, text, has_image=True
        )  # the member's options, suffix and settings, as `imagine` will read them
        return reference_urls(self.info, prompts)

    # -----------------------------------------------------------------------------------------
    # Job row -> engine request (the dispatcher calls this when the job starts)
    # -----------------------------------------------------------------------------------------

    async def build_request(self, job: Job) -> EngineRequest:
        """The engine request for a job row; a ValueError (with the reason) when it cannot be built."""
        return await build_request(job, self.store, self.info)
