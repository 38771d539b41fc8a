"""`/web`: a private, one-time sign-in link to Imagine Web for the member in this server."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.discord.app import BotCog, ImagineBot
from bot.discord.web_links import send_link


class WebLink(BotCog):
    """Imagine Web: the gallery, the job pages, Vary (Region) and the moderator's desk."""

    @app_commands.command(name="web")
    @app_commands.guild_only()
    async def web(self, interaction: discord.Interaction) -> None:
        """A private sign-in link to Imagine Web (works once, 15 minutes)"""
        await send_link(interaction, self.bot.services)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(WebLink(bot))
