"""/blend, /shorten and /describe.

/blend queues a grid job like /imagine and shows it the same way (progress, then the grid with
U1-U4, 🔄 and V1-V4). /shorten and /describe answer once the engine has: a message with the
ranking or the picture and numbered prompts, one button per prompt (`prompt:N`, handled by
`JobActions.run_prompt`) that imagines it. Every refusal is one private sentence.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.core.decode import ImageFetchError
from bot.discord import render
from bot.discord.app import BotCog, ImagineBot
from bot.discord.job_actions.actions import attachment_image, channel_refusal, requester_for
from bot.discord.replies import refuse, user_errors
from engine.api import ImageData
from storage.models import Job

log = logging.getLogger(__name__)

DIMENSION_CHOICES = [
    app_commands.Choice(name="portrait (2:3)", value="portrait"),
    app_commands.Choice(name="square (1:1)", value="square"),
    app_commands.Choice(name="landscape (3:2)", value="landscape"),
]


class PromptToolsCog(BotCog):
    """Blending pictures, shortening prompts, describing pictures."""

    async def _allowed_here(self, interaction: discord.Interaction) -> bool:
        """False, after telling the member, where moderators chose other channels for the bot."""
        guild_id = interaction.guild_id
        settings = await self.bot.services.store.guild_settings(guild_id) if guild_id else None
        refusal = channel_refusal(settings, interaction)
        if refusal is not None:
            await refuse(interaction, refusal)
            return False
        return True

    @app_commands.command(name="blend")
    @app_commands.choices(dimensions=DIMENSION_CHOICES)
    @app_commands.guild_only()
    async def blend(
        self,
        interaction: discord.Interaction,
        image1: discord.Attachment,
        image2: discord.Attachment,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        image5: discord.Attachment | None = None,
        dimensions: app_commands.Choice[str] | None = None,
        prompt: str | None = None,
    ) -> None:
        """Blend 2 to 5 images into four new ones

        Args:
            image1: The first image
            image2: The second image
            image3: A third image (optional)
            image4: A fourth image (optional)
            image5: A fifth image (optional)
            dimensions: The shape of the result (default square)
            prompt: Optional words to steer the blend, with parameters: at night --seed 7
        """
        if not await self._allowed_here(interaction):
            return
        await interaction.response.defer(thinking=True)
        attachments = [a for a in (image1, image2, image3, image4, image5) if a is not None]
        try:
            images: list[ImageData] = []
            for number, attachment in enumerate(attachments, start=1):
                try:
                    images.append(await attachment_image(attachment))
                except ImageFetchError as exc:
                    raise ImageFetchError(f"Image {number}: {exc}") from exc
            job = await self.bot.services.blends.blend(
                requester_for(interaction), images, dimensions.value if dimensions else "square", prompt
            )
        except user_errors() as exc:
            await refuse(interaction, str(exc))
            return
        await self.bot.actions.post_new_jobs(interaction, [job])

    @app_commands.command(name="shorten")
    @app_commands.guild_only()
    async def shorten(self, interaction: discord.Interaction, prompt: str) -> None:
        """Rank a prompt's words and suggest shorter prompts

        Args:
            prompt: The prompt to shorten, with its parameters
        """
        if not await self._allowed_here(interaction):
            return
        await interaction.response.defer(thinking=True)
        try:
            job = await self.bot.services.prompt_tools.shorten(requester_for(interaction), prompt)
        except user_errors() as exc:
            await refuse(interaction, str(exc))
            return
        await self._show_answer(interaction, job)

    @app_commands.command(name="describe")
    @app_commands.guild_only()
    async def describe(self, interaction: discord.Interaction, image: discord.Attachment) -> None:
        """Four prompts for an image, each a button to imagine

        Args:
            image: The image to describe
        """
        if not await self._allowed_here(interaction):
            return
        await interaction.response.defer(thinking=True)
        try:
            picture = await attachment_image(image)
            job = await self.bot.services.prompt_tools.describe(requester_for(interaction), picture)
        except user_errors() as exc:
            await refuse(interaction, str(exc))
            return
        await self._show_answer(interaction, job)

    async def _show_answer(self, interaction: discord.Interaction, job: Job) -> None:
        limit = render.filesize_limit(interaction.guild)
        message = await render.job_message(job, self.bot.services, filesize_limit=limit)
        sent = await interaction.edit_original_response(**message.edit_kwargs())
        await self.bot.services.store.add_message(job.id, sent.id, interaction.channel_id)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(PromptToolsCog(bot))
