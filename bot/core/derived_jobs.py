"""Jobs made from an earlier job: the buttons under a grid and the console subcommands on a job.

A base of `JobService` (bot/core/jobs.py), split off by responsibility: U1-U4 (a cell becomes a
job at once), reroll, Vary, Upscale, Zoom Out, Pan, Make Square and Vary (Region). Every check
runs before a row is written, as for a new prompt (`SubmissionSteps`).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from bot.core.fast import NOTICE_KEY, SPEED_KEY
from bot.core.png_info import job_texts
from bot.core.region import REGION_SOURCES, read_mask
from bot.core.remix import REMIX_ACTIONS, REMIX_KEY, remix_prompt, remixable
from bot.core.rules import (
    _EXPLICIT_ASPECT,
    _OUTPAINT_KINDS,
    GRID_CELLS,
    PAN_DIRECTIONS,
    PARSED_KEY,
    Action,
    CellIndexError,
    JobError,
    JobHiddenError,
    JobNotDoneError,
    Requester,
    UnknownJobError,
    accepted_prompt,
    cell_seed,
)
from bot.core.stealth import STEALTH_KEY
from bot.core.submission import SubmissionSteps
from bot.logs import job_context
from bot.prompt import (
    Prompt,
    dimensions_for,
    parse_prompt,
)
from storage.models import Image, Job, JobKind, JobStatus, new_job_id
from storage.records import JobFields

log = logging.getLogger("bot.core.jobs")  # one logger name for the job service's lines


class DerivedJobSteps(SubmissionSteps):
    """The jobs `JobService` makes from an earlier one; see the module docstring."""

    async def derive(
        self,
        requester: Requester,
        parent_id: str,
        action: Action,
        index: int | None = None,
        zoom: float | None = None,
        direction: str | None = None,
        prompt_override: str | None = None,
    ) -> Job:
        """Queue (or, for U1-U4, complete at once) a job made from an earlier one.

        `index` is the grid cell, 0-3, and is required for a grid parent (except for reroll)
        and refused for a single-image parent. Raises `UnknownJobError`, `JobHiddenError`,
        `JobNotDoneError`, `CellIndexError`, `PromptError`, `BannedError`, `LimitError`.
        """
        action = Action(action)
        parent = await self.get_visible_job(parent_id)
        if prompt_override is not None and action not in REMIX_ACTIONS:
            raise JobError("only a re-roll, V1-V4, Vary, Zoom Out and Pan take an edited prompt (Remix)")
        if action is Action.REROLL:
            if index is not None:
                raise CellIndexError("reroll takes no image index: it redoes the whole job with a new seed")
            return await self._reroll(requester, parent, prompt_override)

        cells = parent.cells
        if not cells:
            raise JobNotDoneError(f"job {parent.id} has no images to work from")
        if len(cells) > 1:
            if index is None:
                raise CellIndexError(
                    f"job {parent.id} is a grid of {len(cells)} images; pick one with an index 1-{len(cells)}"
                )
            if not 0 <= index < len(cells):
                raise CellIndexError(
                    f"image {index + 1} is out of range: job {parent.id} has images 1-{len(cells)}"
                )
        else:
            if index is not None:
                raise CellIndexError(f"job {parent.id} is a single image; leave the image index out")
            if action is Action.UPSCALE:
                raise JobError(
                    f"job {parent.id} is already a single image; use Upscale (Subtle) or Upscale (Creative)"
                )
            index = 0
        source = cells[index]

        prompt_text = parent.prompt
        params: dict[str, Any] = {}
        if PARSED_KEY in (parent.params or {}):
            params[PARSED_KEY] = parent.params[PARSED_KEY]
        # Vary keeps the source's size and upscale doubles it, exactly. Zoom, pan and square get
        # their size from the engine's canvas planning (whole size steps, the engine's maximum):
        # the row has no size until `complete_job` records that of the images actually made.
        width: int | None = source.width
        height: int | None = source.height
        if action in (Action.ZOOM, Action.PAN, Action.SQUARE):
            width = height = None
        if action is Action.ZOOM:
            if zoom is None or not 1.0 <= float(zoom) <= 2.0:
                raise JobError(f"zoom must be a number from 1.0 to 2.0, got {zoom!r}")
            params["zoom"] = float(zoom)
        elif zoom is not None:
            raise JobError("a zoom factor only goes with zoom")
        remixed: Prompt | None = None
        if prompt_override is not None and prompt_override.strip():
            kind_now = JobKind.VARY_STRONG if action is Action.VARY else JobKind(action.value)
            remixed = self._remix(parent, prompt_override, kind_now, params)
            prompt_text = str(remixed)
        if action is Action.PAN:
            if direction not in PAN_DIRECTIONS:
                raise JobError(f"pan direction must be one of {', '.join(PAN_DIRECTIONS)}, got {direction!r}")
            params["direction"] = direction
        elif direction is not None:
            raise JobError("a direction only goes with pan")
        if action is Action.SQUARE and source.width == source.height:
            raise JobError(f"image {index + 1} of job {parent.id} is already square")
        if action in (Action.UPSCALE_SUBTLE, Action.UPSCALE_CREATIVE):
            width, height = source.width * 2, source.height * 2
            params["mode"] = "creative" if action is Action.UPSCALE_CREATIVE else "subtle"
        if action is Action.VARY:  # V1-V4 follow the member's variation setting (high: strong)
            member = await self.store.member_settings(requester.user_id, requester.guild_id)
            params["strength"] = "subtle" if member.variation == "low" else "strong"
        elif action in (Action.VARY_SUBTLE, Action.VARY_STRONG):
            params["strength"] = "subtle" if action is Action.VARY_SUBTLE else "strong"

        await self._check_moderation(requester, [prompt_text] if prompt_override else [], prompt_override)
        kind = JobKind(action.value)
        if action is Action.VARY and len(cells) == 1:
            kind = JobKind.VARY_STRONG  # V on a single image is Vary (Strong)
        seed = source.seed if action is Action.UPSCALE and source.seed is not None else self._new_seed()
        if remixed is not None and remixed.seed is not None:
            seed = remixed.seed  # a seed typed into the remixed prompt is the new grid's
        cell_count = 1 if kind in (JobKind.UPSCALE, JobKind.UPSCALE_SUBTLE, JobKind.UPSCALE_CREATIVE) else 4
        params["seeds"] = [cell_seed(seed, i) for i in range(cell_count)]
        if action is not Action.UPSCALE:  # U1-U4 use no engine time
            params.update(await self._member_params(requester, remixed.speed if remixed else None))
        else:
            params.update(await self._visibility(requester))
        fields = JobFields(
            kind=kind.value,
            **self._author(requester),
            raw_prompt=prompt_override if remixed is not None and prompt_override else parent.raw_prompt,
            prompt=prompt_text,
            params=params,
            model=self.model_name,
            width=width,
            height=height,
            seed=seed,
            parent_id=parent.id,
            parent_index=index,
        )
        if action is Action.UPSCALE:
            return await self._separate(fields, source)
        limits = await self._limits_for(requester)
        self.dispatcher.check_capacity(requester.user_id, 1, limits)
        queued: JobFields = {**fields, "status": JobStatus.QUEUED.value, **self.dispatcher.owner.fields()}
        job = await self.store.create_job(**queued)
        await self._submit([job], limits)
        return job

    async def region(
        self, requester: Requester, parent_id: str, mask_png: bytes, prompt_override: str | None = None
    ) -> Job:
        """Vary (Region): four images with the masked area of an upscaled image redrawn.

        `mask_png` is white where new content goes and has the image's size (`bot.core.region`).
        `prompt_override` (optional) is the edited prompt for the region. Raises `JobError`
        (`MaskError`), `PromptError`, `BannedError`, `BlockedError`, `LimitError`; nothing is
        stored when it does.
        """
        parent = await self.get_visible_job(parent_id)
        if parent.kind not in REGION_SOURCES or len(parent.cells) != 1:
            raise JobError(
                f"Vary (Region) works on an upscaled image; job {parent.id} is not one (use U1-U4 first)"
            )
        source = parent.cells[0]
        mask = await asyncio.to_thread(read_mask, mask_png, source.width, source.height)
        params: dict[str, Any] = {}
        prompt_text = parent.prompt
        if PARSED_KEY in (parent.params or {}):
            params[PARSED_KEY] = parent.params[PARSED_KEY]
        edited = (prompt_override or "").strip()
        if edited:
            prompt = parse_prompt(edited)
            self._check_version(prompt)
            prompt_text = str(prompt)
            params[PARSED_KEY] = prompt.to_dict()
        await self._check_moderation(requester, [prompt_text] if edited else [], edited or None)
        limits = await self._limits_for(requester)
        self.dispatcher.check_capacity(requester.user_id, 1, limits)
        params.update(await self._member_params(requester, prompt.speed if edited else None))  # Fast or Relax
        job_id = new_job_id()
        params["mask"] = await self._save_init_image(f"{job_id}-mask", mask)
        seed = self._new_seed()
        params["seeds"] = [cell_seed(seed, i) for i in range(GRID_CELLS)]
        fields: JobFields = {
            "id": job_id,
            "kind": JobKind.REGION.value,
            "status": JobStatus.QUEUED.value,
            **self._author(requester),
            **self.dispatcher.owner.fields(),
            "raw_prompt": edited or parent.raw_prompt,
            "prompt": prompt_text,
            "params": params,
            "model": self.model_name,
            "width": source.width,
            "height": source.height,
            "seed": seed,
            "parent_id": parent.id,
            "parent_index": 0,
        }
        try:
            job = await self.store.create_job(**fields)
        except BaseException:
            await asyncio.to_thread(
                (Path(self.store.files.data_dir) / params["mask"]).unlink, missing_ok=True
            )
            raise
        await self._submit([job], limits)
        return job

    async def get_visible_job(self, job_id: str) -> Job:
        """A job that exists, is not hidden or deleted, and is done (what buttons work from)."""
        job = await self.store.get_job(job_id) if job_id else None
        if job is None:
            raise UnknownJobError(f"there is no job {job_id!r}")
        if job.deleted:
            raise JobHiddenError(f"job {job.id} was deleted by its author")
        if job.hidden:
            raise JobHiddenError(f"job {job.id} was hidden by a moderator")
        if job.status != JobStatus.DONE:
            if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                raise JobNotDoneError(f"job {job.id} is still {job.status}; try again when it is done")
            raise JobNotDoneError(f"job {job.id} is {job.status}, so it has no images to work from")
        return job

    def _remix(self, parent: Job, text: str, kind: str, params: dict[str, Any]) -> Prompt:
        """The edited prompt of a Remix, checked for what `kind` can use, recorded in `params`."""
        prompt = remix_prompt(
            accepted_prompt(parent), text, kind
        )  # no options: the modal shows the prompt in full
        self._check_version(prompt)
        params[PARSED_KEY] = prompt.to_dict()
        params[REMIX_KEY] = parent.prompt
        if kind == JobKind.ZOOM:
            if _EXPLICIT_ASPECT.search(text):  # only a typed --ar reshapes the zoomed-out picture
                params["aspect"] = list(prompt.aspect)
            else:
                params.pop("aspect", None)
        return prompt

    async def _reroll(self, requester: Requester, parent: Job, prompt_override: str | None = None) -> Job:
        """A new seed for the same prompt; on a derived grid, the same action on the same source.

        With an edited prompt (Remix), that prompt drives the new job instead."""
        seed = self._new_seed()
        params = dict(parent.params or {})
        params.pop(REMIX_KEY, None)  # a plain re-roll of a remix is no remix itself
        params.pop(STEALTH_KEY, None)  # the new job's visibility is its own author's (below)
        params["seeds"] = [cell_seed(seed, i) for i in range(len(params.get("seeds") or [0] * GRID_CELLS))]
        params["rerolled_from"] = parent.id
        parent_id: str | None
        if parent.kind in (JobKind.IMAGINE, JobKind.REROLL):
            kind, parent_id, parent_index = JobKind.REROLL.value, parent.id, None
        elif parent.kind == JobKind.BLEND:
            # Another blend of the same sources (kept in params), derived from this one.
            kind, parent_id, parent_index = JobKind.BLEND.value, parent.id, None
        else:
            # Rerolling a variation means another variation of the same source (Midjourney's 🔄).
            kind, parent_id, parent_index = parent.kind, parent.parent_id, parent.parent_index
            if parent_id is None:
                raise JobError(f"the source of job {parent.id} is gone, so it cannot be rerolled")
            if kind == JobKind.UPSCALE:
                raise JobError(f"job {parent.id} is a separated image; there is nothing to reroll")
        prompt_text, raw_prompt = parent.prompt, parent.raw_prompt
        width, height = parent.width, parent.height
        remixed = None
        if prompt_override is not None and prompt_override.strip():
            if not remixable(kind):
                raise JobError(
                    f"a {kind} job cannot be remixed; only re-rolls, variations, zooms and pans can"
                )
            remixed = self._remix(parent, prompt_override, kind, params)
            prompt_text, raw_prompt = str(remixed), prompt_override
            if remixed.seed is not None:
                seed = remixed.seed
                params["seeds"] = [cell_seed(seed, i) for i in range(len(params["seeds"]))]
            if kind == JobKind.REROLL:  # a new grid: a new --ar gives it a new size
                width, height = dimensions_for(
                    remixed.aspect, self.info.native_width, self.info.native_height, self.info.size_step
                )
        for key in (SPEED_KEY, NOTICE_KEY):  # the mode is the clicker's, now, not the parent's
            params.pop(key, None)
        params.update(await self._member_params(requester, remixed.speed if remixed else None))
        await self._check_moderation(requester, [prompt_text] if remixed else [], prompt_override)
        limits = await self._limits_for(requester)
        self.dispatcher.check_capacity(requester.user_id, 1, limits)
        reroll = JobFields(
            kind=kind,
            status=JobStatus.QUEUED.value,
            raw_prompt=raw_prompt,
            prompt=prompt_text,
            params=params,
            model=self.model_name,
            # An outpaint's size is the engine's to plan; the row learns it on completion.
            width=None if kind in _OUTPAINT_KINDS else width,
            height=None if kind in _OUTPAINT_KINDS else height,
            seed=seed,
            parent_id=parent_id,
            parent_index=parent_index,
        )
        row: JobFields = {**self._author(requester), **self.dispatcher.owner.fields(), **reroll}
        job = await self.store.create_job(**row)
        await self._submit([job], limits)
        return job

    async def _separate(self, fields: JobFields, source: Image) -> Job:
        """U1-U4: the cell becomes a job of its own at once, like Midjourney (no engine work).

        The cell's PNG is stored again without a decode or re-encode; only its text chunks
        change, to name this job. The row is made
        `running` and completed in the same call; if storing fails (a full disk, a busy
        database) it ends `failed` with the reason rather than staying `running` until a restart.
        """
        try:
            picture = await asyncio.to_thread(self.store.files.load_encoded, source.path)
        except (OSError, ValueError) as exc:
            raise JobError(f"the image file of this cell cannot be read ({exc})") from exc
        seed = source.seed if source.seed is not None else fields.get("seed")
        assert seed is not None, "a derived job always has a seed"
        fields["params"]["seeds"] = [seed]
        running: JobFields = {**fields, "status": JobStatus.RUNNING.value, **self.dispatcher.owner.fields()}
        job = await self.store.create_job(**running)
        with job_context(job.id, user_id=job.user_id, guild_id=job.guild_id, kind=job.kind):
            try:
                job = await self.store.complete_job(
                    job.id,
                    images=[picture],
                    seeds=[seed],
                    grid=None,
                    timings={},
                    texts=job_texts(job, [seed], [(picture.width, picture.height)], None),
                )
            except Exception as exc:
                await self._fail_quietly(job.id, f"the image could not be stored: {exc}")
                raise
            log.info("separated image %d of job %s", (job.parent_index or 0) + 1, job.parent_id)
        return job
