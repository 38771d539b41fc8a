"""A cog that brings one context menu (a message's Apps menu) with it."""

from __future__ import annotations

from discord import app_commands
from discord.ext import commands


class ContextMenuCog(commands.Cog):
    """discord.py puts a cog's slash commands on the tree by itself, but not a context menu: its
    callback is a method of the cog, so the menu is made in `__init__` (as `menu`). This adds it to
    the tree when the cog loads and takes it off when the cog unloads."""

    bot: commands.Bot
    menu: app_commands.ContextMenu

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
