"""`/settings`: one ephemeral message with a member's prompt defaults as buttons and selects."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.discord.app import BotCog, ImagineBot
from bot.discord.replies import refuse
from bot.discord.settings.view import SettingsButton, SettingsSelect, settings_text, settings_view

log = logging.getLogger(__name__)


class SettingsCog(BotCog, name="Settings"):
    """Your defaults on this server: model, stylize, raw, Remix, variation."""

    @app_commands.command(name="settings")
    @app_commands.guild_only()
    async def settings(self, interaction: discord.Interaction) -> None:
        """Your defaults: model, stylize, raw, Remix, variation"""
        services = self.bot.services
        current = await services.store.member_settings(interaction.user.id, interaction.guild_id)
        guild = await services.store.guild_settings(interaction.guild_id or 0)
        await interaction.response.send_message(
            settings_text(current, services, guild),
            view=settings_view(current, services, guild),
            ephemeral=True,
        )

    async def _set_stealth(self, interaction: discord.Interaction, stealth: bool) -> None:
        store = self.bot.services.store
        guild = await store.guild_settings(interaction.guild_id or 0)
        if stealth and not guild.allow_stealth:
            await refuse(interaction, "Stealth mode is not allowed on this server; your jobs are public.")
            return
        await store.update_member_settings(interaction.user.id, interaction.guild_id, stealth=stealth)
        await interaction.response.send_message(
            "Stealth mode: your new jobs are seen only by you and this server's moderators."
            if stealth
            else "Public mode: your new jobs can be seen by everyone on this server.",
            ephemeral=True,
        )

    @app_commands.command(name="stealth")
    @app_commands.guild_only()
    async def stealth(self, interaction: discord.Interaction) -> None:
        """Your new jobs are seen only by you and moderators"""
        await self._set_stealth(interaction, True)

    @app_commands.command(name="public")
    @app_commands.guild_only()
    async def public(self, interaction: discord.Interaction) -> None:
        """Your new jobs can be seen by everyone (the default)"""
        await self._set_stealth(interaction, False)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(SettingsCog(bot))
    # Matched by custom_id, so every /settings message ever sent keeps working.
    bot.add_dynamic_items(SettingsButton, SettingsSelect)
