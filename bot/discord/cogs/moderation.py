"""Moderation commands (owned by the moderation feature; this is a placeholder cog).

It exists so the bot's extension list loads while the moderation cog is being written.
"""

from __future__ import annotations

from discord.ext import commands


async def setup(bot: commands.Bot) -> None:
    """Nothing to register yet."""
