"""Asking before a permutation prompt starts many jobs (Midjourney asks above a few)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import discord

from bot.discord.replies import answer_internal_error

log = logging.getLogger(__name__)

CONFIRM_ABOVE = 5
"""More jobs than this from one `/imagine` (permutations times `--repeat`) need a confirmation."""
CONFIRM_TIMEOUT_S = 5 * 60
EXPIRED = "Nothing was started: no answer in time."


class ConfirmJobsView(discord.ui.View):
    """Two ephemeral buttons for the author only: start the jobs, or don't."""

    def __init__(
        self,
        question: discord.Interaction,
        count: int,
        start: Callable[[discord.Interaction], Awaitable[None]],
    ) -> None:
        super().__init__(timeout=CONFIRM_TIMEOUT_S)
        self.question = question  # the /imagine that asked: its message says so when time is up
        self.author_id = question.user.id
        self.start = start
        self.yes.label = f"Yes, start {count} jobs"

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.author_id

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[ConfirmJobsView], /
    ) -> None:
        """A bug while starting the jobs: log it and tell the member, privately."""
        await answer_internal_error(interaction, "starting confirmed /imagine jobs", error)

    async def on_timeout(self) -> None:
        with contextlib.suppress(discord.HTTPException):
            await self.question.edit_original_response(content=EXPIRED, view=None)

    @discord.ui.button(label="Yes", style=discord.ButtonStyle.success)
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmJobsView]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Starting…", view=None)
        await self.start(interaction)

    @discord.ui.button(label="No", style=discord.ButtonStyle.secondary)
    async def no(self, interaction: discord.Interaction, button: discord.ui.Button[ConfirmJobsView]) -> None:
        self.stop()
        await interaction.response.edit_message(content="Nothing was started.", view=None)
