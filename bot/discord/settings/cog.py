"""`/settings`: one ephemeral message with a member's prompt defaults as buttons and selects."""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.app import ImagineBot
from bot.discord.settings.view import SettingsButton, SettingsSelect, settings_text, settings_view

log = logging.getLogger(__name__)


class SettingsCog(commands.Cog, name="Settings"):
    """Your defaults on this server: model, stylize, raw, Remix, variation."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot

    @app_commands.command(name="settings", description="Your defaults: model, stylize, raw, Remix, variation")
    @app_commands.guild_only()
    async def settings(self, interaction: discord.Interaction) -> None:
        services = self.bot.services
        current = await services.store.member_settings(interaction.user.id, interaction.guild_id)
        await interaction.response.send_message(
            settings_text(current, services), view=settings_view(current, services), ephemeral=True
        )


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(SettingsCog(bot))
    # Matched by custom_id, so every /settings message ever sent keeps working.
    bot.add_dynamic_items(SettingsButton, SettingsSelect)
