"""`/imagine` and the author's "Delete job" message command.

The prompt is checked before anything else (the parser is pure and fast, so a bad prompt gets the
parser's exact words privately, well inside Discord's 3 seconds); then the bot defers publicly
and does the slow parts: fetching an image prompt, writing rows, queueing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.actions import channel_refusal, refuse
from bot.discord.views.confirm import CONFIRM_ABOVE, ConfirmJobsView
from bot.prompt import PromptError, expand_permutations, parse_prompt

if TYPE_CHECKING:
    from bot.discord.app import ImagineBot

log = logging.getLogger(__name__)


def count_jobs(raw_prompt: str) -> tuple[int, str | None]:
    """How many jobs a prompt makes, and the first image URL at its front (raises PromptError)."""
    prompts = expand_permutations(raw_prompt)
    parsed = [parse_prompt(text) for text in prompts]
    urls = next((p.image_urls for p in parsed if p.image_urls), [])
    return sum(p.repeat for p in parsed), (urls[0] if urls else None)


class Imagine(commands.Cog):
    """Making pictures."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.delete_menu = app_commands.ContextMenu(name="Delete job", callback=self.delete_job)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.delete_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.delete_menu.name, type=self.delete_menu.type)

    @app_commands.command(name="imagine", description="Create four images from a prompt")
    @app_commands.describe(
        prompt="What to draw, with Midjourney parameters: a lighthouse at dusk --ar 16:9 --no people",
        image="An image to start from (an image prompt); a link at the front of the prompt works too",
    )
    @app_commands.guild_only()
    async def imagine(
        self, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
    ) -> None:
        try:
            count, url = count_jobs(prompt)
        except PromptError as exc:
            await refuse(interaction, str(exc))
            return
        refusal = await channel_refusal(self.bot.services, interaction)
        if refusal is not None:
            await refuse(interaction, refusal)
            return
        actions = self.bot.actions
        if count > CONFIRM_ABOVE:

            async def start(click: discord.Interaction) -> None:
                await actions.imagine(click, prompt, image, url)

            view = ConfirmJobsView(interaction, count, start)
            await interaction.response.send_message(
                f"This prompt starts **{count} jobs**. Start them all?", view=view, ephemeral=True
            )
            return
        await actions.imagine(interaction, prompt, image, url)

    @app_commands.guild_only()
    async def delete_job(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Replace your own result with a notice (moderators may delete any)."""
        await self.bot.actions.delete(interaction, message)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Imagine(bot))
