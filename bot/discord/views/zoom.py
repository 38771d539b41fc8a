"""The Custom Zoom modal: a zoom factor from 1.0 to 2.0 and the prompt, editable.

Like Midjourney's, the prompt field holds the job's canonical prompt, so a member can change the
words or `--ar` (the zoomed-out image then takes the new aspect ratio).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from bot.discord.actions import refuse

if TYPE_CHECKING:
    from bot.discord.actions import JobActions
    from storage.models import Job

DEFAULT_ZOOM = "1.5"


class CustomZoomModal(discord.ui.Modal, title="Custom Zoom"):
    """Asks for the zoom and the prompt; submitting starts the zoom job like a button would."""

    zoom: discord.ui.TextInput[CustomZoomModal] = discord.ui.TextInput(
        label="Zoom out (1.0 to 2.0)", custom_id="zoom", default=DEFAULT_ZOOM, max_length=5, required=True
    )
    prompt: discord.ui.TextInput[CustomZoomModal] = discord.ui.TextInput(
        label="Prompt (you may change it, and --ar)",
        custom_id="prompt",
        style=discord.TextStyle.paragraph,
        max_length=1500,
    )

    def __init__(self, actions: JobActions, job: Job) -> None:
        super().__init__(timeout=15 * 60)
        self.actions = actions
        self.job = job
        self.prompt.default = job.prompt

    async def on_submit(self, interaction: discord.Interaction) -> None:
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
        await self.actions.derive(
            interaction,
            self.job,
            "zoom_custom",
            zoom=zoom,
            prompt_override=prompt if prompt and prompt != self.job.prompt else None,
        )
