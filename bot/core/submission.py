"""What every way of making jobs shares: the checks before any row is written, and the hand-over.

The base of `JobService` (bot/core/jobs.py), split off by responsibility: the `--v` version
check, bans and banned words (a blocked prompt is recorded for the moderators), the per-user
limits (the guild's, or the console's), the rows' author fields, keeping an image prompt under
the data directory, and handing rows to the dispatcher (rows that lose a race for the last queue
place are closed as `cancelled`, never left `queued`).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Any

from bot.core.dispatcher import Dispatcher
from bot.core.fast import NOTICE_KEY, SPEED_KEY, decide_speed, requested_speed
from bot.core.inputs import save_input_image
from bot.core.limits import LimitError, Limits
from bot.core.ports import JobStore
from bot.core.rules import (
    CONSOLE_QUEUE_LIMIT,
    SEED_LIMIT,
    ModerationCheck,
    Requester,
    _default_moderation,
)
from bot.core.stealth import stealth_params
from bot.prompt import Prompt, PromptError
from engine.api import ImageData, ModelInfo
from storage.models import Job, JobKind, JobStatus, MemberSettings
from storage.records import JobFields

log = logging.getLogger("bot.core.jobs")  # one logger name for the job service's lines


class SubmissionSteps:
    """The state and steps `JobService` builds on; see the module docstring."""

    def __init__(
        self,
        store: JobStore,
        dispatcher: Dispatcher,
        info: ModelInfo,
        *,
        model_name: str | None = None,
        versions: Mapping[str, str] | None = None,
        moderation: ModerationCheck | None = None,
        rng: random.Random | None = None,
        turbo_allowed: bool = False,
    ) -> None:
        self.store = store
        self.turbo_allowed = turbo_allowed  # the operator's IMAGINE_TURBO: --turbo is refused without it
        self.dispatcher = dispatcher
        self.info = info
        self.model_name = model_name or info.name
        # `--v` values arrive lower-cased from the parser, so the configured names are too.
        self.versions = {str(name).lower(): model for name, model in (versions or {}).items()}
        self._moderation = moderation or _default_moderation()
        self._rng = rng or random.SystemRandom()

    async def _submit(self, jobs: list[Job], limits: Limits) -> None:
        """Hand the rows to the dispatcher. The capacity was checked before the rows were made, but
        the same user may submit twice at once; rows that lose that race are closed as
        `cancelled` with the reason, never left `queued` to surprise everyone after a restart."""
        for i, job in enumerate(jobs):
            try:
                await self.dispatcher.submit(job, limits)
            except LimitError as exc:
                await self._cancel_unsubmitted(jobs[i:], str(exc))
                raise

    async def _cancel_unsubmitted(self, jobs: Sequence[Job], reason: str) -> None:
        """Close rows that were made but never reached the dispatcher as `cancelled`, with the reason.

        Best effort, one by one: the error that brought us here is the one the caller reports.
        """
        for job in jobs:
            try:
                await self.store.fail_job(job.id, reason, status=JobStatus.CANCELLED.value)
            except Exception:
                log.exception("job %s was never queued and could not be marked cancelled", job.id)

    async def _fail_quietly(self, job_id: str, reason: str) -> None:
        """Mark a job `failed`; a failure to do so is logged, so the caller's own error is what surfaces."""
        try:
            await self.store.fail_job(job_id, reason)
        except Exception:
            log.exception("job %s could not be marked failed", job_id)

    # -----------------------------------------------------------------------------------------
    # Helpers
    # -----------------------------------------------------------------------------------------

    def _new_seed(self) -> int:
        return self._rng.randrange(SEED_LIMIT)

    async def _member_params(
        self, requester: Requester, asked: str | None, member: MemberSettings | None = None
    ) -> dict[str, Any]:
        """The mode a new job runs in (`params` entries), the notice when Fast time ran out, and
        whether it is stealth (see `_visibility`)."""
        if member is None:
            member = await self.store.member_settings(requester.user_id, requester.guild_id)
        wanted = requested_speed(asked, member, self.turbo_allowed)
        speed, notice = await decide_speed(
            self.store, wanted, requester.user_id, requester.guild_id, requester.role_ids
        )
        visibility = await self._visibility(requester, member)
        return {SPEED_KEY: speed, **({NOTICE_KEY: notice} if notice else {}), **visibility}

    async def _visibility(self, requester: Requester, member: MemberSettings | None = None) -> dict[str, Any]:
        """The params entry that makes a new job stealth, decided now and kept with the job."""
        if requester.guild_id is None:
            return {}
        if member is None:
            member = await self.store.member_settings(requester.user_id, requester.guild_id)
        if not member.stealth:
            return {}
        return stealth_params(member, await self.store.guild_settings(requester.guild_id))

    def _check_version(self, prompt: Prompt) -> None:
        """`--v` picks a configured model; this process runs one model, so it must be that one.
        `--lora` picks one of the LoRA styles the operator installed."""
        choice = prompt.lora_choice
        if choice is not None and choice[0] not in self.info.loras:
            installed = ", ".join(self.info.loras)
            raise PromptError(
                f"`--lora {choice[0]}` is not a style installed here; "
                + (
                    f"installed: {installed}"
                    if installed
                    else "none are (the operator sets IMAGINE_LORA_DIR)"
                ),
                "lora",
            )
        version = prompt.version
        if version is None:
            return
        model = self.versions.get(str(version).lower())
        if model is None:
            known = ", ".join(sorted(self.versions)) or "none are configured (IMAGINE_VERSIONS)"
            raise PromptError(f"--v {version} is not a version this bot knows; available: {known}")
        if model != self.model_name:
            raise PromptError(
                f"--v {version} is the model {model}, but this bot runs {self.model_name}; "
                "leave --v out or use a version that maps to it"
            )

    async def _check_moderation(self, requester: Requester, texts: Sequence[str], raw: str | None) -> None:
        """Bans and banned words; a blocked prompt is recorded as a `blocked` job, then refused."""
        try:
            await self._moderation(self.store, requester.user_id, requester.guild_id, list(texts))
        except Exception as exc:
            rule_text = getattr(exc, "rule_text", None)
            if rule_text is not None and raw:
                blocked: JobFields = {
                    **self._author(requester),
                    "kind": JobKind.IMAGINE.value,
                    "status": JobStatus.BLOCKED.value,
                    "raw_prompt": raw,
                    "prompt": raw,
                    "model": self.model_name,
                    "blocked_rule": str(rule_text),
                    "error": "blocked by a banned-word rule",
                }
                await self.store.create_job(**blocked)
            raise

    async def _limits_for(self, requester: Requester) -> Limits:
        """The dispatcher's limits, overridden by the guild's; the console queues more freely."""
        base = self.dispatcher.limits
        if requester.source == "console":
            return Limits(base.max_running_per_user, max(base.max_queued_per_user, CONSOLE_QUEUE_LIMIT))
        if requester.guild_id is None:
            return base
        settings = await self.store.guild_settings(requester.guild_id)
        return base.with_overrides(settings.max_running_per_user, settings.max_queued_per_user)

    async def _save_init_image(self, job_id: str, image: ImageData) -> str:
        """Keep the image prompt (see `bot.core.inputs`) for all the jobs of the submission."""
        return await save_input_image(self.store.files, job_id, image)

    @staticmethod
    def _author(requester: Requester) -> JobFields:
        return {
            "source": requester.source,
            "user_id": requester.user_id,
            "user_name": requester.user_name,
            "guild_id": requester.guild_id,
            "channel_id": requester.channel_id,
        }
