"""`/imagine` and the author's "Delete job" message command.

The prompt is checked before anything else (the parser is pure and fast, and the member's
`/prefer suffix` one small read, so a bad prompt gets the parser's exact words privately, well
inside Discord's 3 seconds); then the bot defers publicly and does the slow parts: fetching an
image prompt, writing rows, queueing.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.core.member_settings import member_prompts
from bot.core.ports import JobStore
from bot.discord.app import ImagineBot
from bot.discord.context_menu import ContextMenuCog
from bot.discord.imagine.confirm import CONFIRM_ABOVE, ConfirmJobsView
from bot.discord.job_actions.actions import channel_refusal
from bot.discord.replies import refuse
from bot.prompt import PromptError

log = logging.getLogger(__name__)


MIXED_IMAGES = (
    "The `{…}` permutations of this prompt start from different images (or only some of them from "
    "one); one /imagine takes one image prompt, so send each image as its own /imagine."
)


async def count_jobs(
    store: JobStore, user_id: int, raw_prompt: str, *, attached: bool = False, guild_id: int | None = None
) -> tuple[int, str | None]:
    """How many jobs a prompt makes with the member's `/prefer suffix`, planned exactly as the
    job service will (permutations of prompt and suffix, `--repeat`), and the image link at the
    front of its prompts. Raises PromptError, also when permutations name different image links
    and no attachment replaces them: the job service takes one image prompt for all its jobs.
    """
    text = " ".join(raw_prompt.split())
    if not text:
        raise PromptError("the prompt is empty; describe the image you want")
    prompts, _ = await member_prompts(store, user_id, guild_id, text)
    urls = {prompt.image_urls[0] if prompt.image_urls else None for prompt in prompts}
    if len(urls) > 1 and not attached:
        raise PromptError(MIXED_IMAGES)
    count = sum(max(1, prompt.repeat) for prompt in prompts)
    return count, next(iter(urls)) if len(urls) == 1 else None


class Imagine(ContextMenuCog):
    """Making pictures."""

    bot: ImagineBot

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Delete job", callback=self.delete_job)

    @app_commands.command(name="imagine")
    @app_commands.guild_only()
    async def imagine(
        self, interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
    ) -> None:
        """Create four images from a prompt

        Args:
            prompt: What to draw, with Midjourney parameters: a lighthouse at dusk --ar 16:9 --no people
            image: An image to start from (an image prompt); a link at the front of the prompt works too
        """
        try:
            count, url = await count_jobs(
                self.bot.services.store,
                interaction.user.id,
                prompt,
                attached=image is not None,
                guild_id=interaction.guild_id,
            )
        except PromptError as exc:
            await refuse(interaction, str(exc))
            return
        guild_id = interaction.guild_id
        settings = await self.bot.services.store.guild_settings(guild_id) if guild_id else None
        refusal = channel_refusal(settings, interaction)
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
