"""The Custom Zoom modal: a zoom factor from 1.0 to 2.0 and the prompt, editable.

Like Midjourney's, the prompt field holds the job's canonical prompt, so a member can change the
words or `--ar` (the zoomed-out image then takes the new aspect ratio).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.discord.replies import answer_internal_error, refuse
from storage.models import Job

log = logging.getLogger(__name__)

DEFAULT_ZOOM = "1.5"
PROMPT_LIMIT = 4000
"""Discord's most for a text input; a job whose prompt is longer cannot be offered for editing
(Discord refuses the whole modal), so `too_long` gives the member a reason instead."""


def prompt_too_long(job: Job, feature: str, instead: str) -> str | None:
    """Why this job's prompt cannot go into `feature`'s modal (and what to do `instead`), or None."""
    length = len(job.prompt or "")
    if length <= PROMPT_LIMIT:
        return None
    return (
        f"This job's prompt is {length:,} characters; {feature} can edit at most {PROMPT_LIMIT:,}. {instead}"
    )


ZoomSubmit = Callable[[discord.Interaction, Job, float, "str | None"], Awaitable[object]]
"""What the modal hands a submitted zoom to: (interaction, job, zoom, prompt override or None)."""


class CustomZoomModal(discord.ui.Modal, title="Custom Zoom"):
    """Asks for the zoom and the prompt; submitting starts the zoom job like a button would."""

    zoom: discord.ui.TextInput[CustomZoomModal] = discord.ui.TextInput(
        label="Zoom out (1.0 to 2.0)", custom_id="zoom", default=DEFAULT_ZOOM, max_length=5, required=True
    )
    prompt: discord.ui.TextInput[CustomZoomModal] = discord.ui.TextInput(
        label="Prompt (you may change it, and --ar)",
        custom_id="prompt",
        style=discord.TextStyle.paragraph,
        max_length=PROMPT_LIMIT,
    )

    @staticmethod
    def too_long(job: Job) -> str | None:
        """Why this job's prompt cannot go into the modal, or None when it fits."""
        return prompt_too_long(job, "Custom Zoom", "Use Zoom Out 2x or 1.5x, or /imagine a shorter prompt.")

    def __init__(self, submit: ZoomSubmit, job: Job) -> None:
        super().__init__(timeout=15 * 60)
        self.submit = submit
        self.job = job
        self.prompt.default = job.prompt

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            await self._submit(interaction)
        except Exception as exc:
            # Left to discord.py, a bug here is one log line and a deferral that never resolves
            # for the member; tell them, and log which job it was.
            await answer_internal_error(interaction, f"Custom Zoom on job {self.job.id}", exc)

    async def _submit(self, interaction: discord.Interaction) -> None:
        text = (self.zoom.value or "").strip().rstrip("xX")
        try:
            zoom = float(text)
        except ValueError:
            zoom = -1.0
        if not 1.0 <= zoom <= 2.0:
            await refuse(
                interaction, f"The zoom must be a number from 1.0 to 2.0; {self.zoom.value!r} is not."
            )
            return
        await interaction.response.defer()
        prompt = (self.prompt.value or "").strip()
        override = prompt if prompt and prompt != self.job.prompt else None
        await self.submit(interaction, self.job, zoom, override)
