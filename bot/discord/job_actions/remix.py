"""The Remix modal: with Remix on (in /settings), a re-roll, V1-V4, Vary, Zoom Out or Pan first
shows the job's prompt for editing, as Midjourney does; the edited prompt drives the new job.

The modal holds the canonical prompt, parameters included; the job service refuses a parameter
the action cannot take (a pan's `--ar`) with a sentence, and an unchanged prompt is a plain click.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.discord.job_actions.zoom import PROMPT_LIMIT, prompt_too_long
from bot.discord.replies import answer_internal_error
from storage.models import Job

log = logging.getLogger(__name__)

# The buttons Remix applies to (their `ButtonSpec.action`), as Midjourney's Remix does.
REMIX_BUTTONS = frozenset(
    {
        "reroll",
        "vary",
        "vary_subtle",
        "vary_strong",
        "zoom_2",
        "zoom_1_5",
        "pan_left",
        "pan_right",
        "pan_up",
        "pan_down",
    }
)

RemixSubmit = Callable[[discord.Interaction, Job, "str | None"], Awaitable[object]]
"""What the modal hands a submitted prompt to: (interaction, job, edited prompt or None)."""


def remix_too_long(job: Job) -> str | None:
    return prompt_too_long(job, "Remix", "Turn Remix off in /settings to use this button as it is.")


class RemixModal(discord.ui.Modal, title="Remix"):
    """The job's prompt, editable; submitting starts the button's job with it."""

    prompt: discord.ui.TextInput[RemixModal] = discord.ui.TextInput(
        label="New prompt for the images",
        custom_id="prompt",
        style=discord.TextStyle.paragraph,
        max_length=PROMPT_LIMIT,
    )

    def __init__(self, submit: RemixSubmit, job: Job, action_label: str) -> None:
        super().__init__(title=f"Remix: {action_label}"[:45], timeout=15 * 60)
        self.submit = submit
        self.job = job
        self.prompt.default = job.prompt

    async def on_submit(self, interaction: discord.Interaction) -> None:
        try:
            await interaction.response.defer()
            text = " ".join((self.prompt.value or "").split())
            await self.submit(interaction, self.job, text if text and text != self.job.prompt else None)
        except Exception as exc:
            await answer_internal_error(interaction, f"Remix on job {self.job.id}", exc)
