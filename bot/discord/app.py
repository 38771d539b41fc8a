"""The Discord client: a `commands.Bot` whose `setup_hook` loads one cog per feature.

`create_bot(services)` is the app factory. It takes already-started `Services` (store, engine,
dispatcher, jobs), so the same bot runs in production against the spawned engine, in SimCord tests
against an in-process one, and in the wire test against a fake Discord.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.decode import configure_decodes
from bot.core.fetch import fetch_image as default_fetch
from bot.core.ports import ImageFetcher
from bot.core.services import Services
from bot.discord.buttons import JobButton
from bot.discord.job_actions.actions import JobActions
from bot.discord.messenger import JobMessenger
from bot.discord.replies import answer_internal_error

log = logging.getLogger(__name__)

EXTENSIONS = [
    "bot.discord.imagine.cog",
    "bot.discord.info.cog",
    "bot.discord.moderation.cog",
    "bot.discord.settings.cog",
    "bot.discord.settings.fast",
    "bot.discord.prompt_tools.cog",
    "bot.discord.web.cog",
]


class ImagineBot(commands.Bot):
    """The bot. Slash commands and buttons only, so it needs no privileged intents."""

    def __init__(
        self,
        services: Services,
        *,
        fetch_image: ImageFetcher | None = None,
        progress_interval: float = 3.0,
        dev_guild_id: int | None = None,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        if fetch_image is None:
            fetch_image = default_fetch
        self.services = services
        self.dev_guild_id = dev_guild_id
        self.actions = JobActions(self, fetch_image)
        self.messenger = JobMessenger(self, services, progress_interval=progress_interval)
        self.tree.on_error = self.on_app_command_error  # type: ignore[method-assign]

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        # Buttons are matched by their custom_id pattern, so every job button ever sent works.
        self.add_dynamic_items(JobButton)
        self.messenger.start()
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Register the slash commands: to the dev guild at once if set, else globally."""
        if self.dev_guild_id is not None:
            guild = discord.Object(id=self.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
        else:
            synced = await self.tree.sync()
        log.info("synced %d application command(s)", len(synced))

    async def on_ready(self) -> None:
        log.info("connected as %s to %d guild(s)", self.user, len(self.guilds))

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await answer_internal_error(
            interaction, f"command {interaction.command and interaction.command.name}", error
        )

    async def close(self) -> None:
        await self.messenger.close()
        await super().close()


class BotCog(commands.Cog):
    """A feature's cog: it keeps the bot, through which it reaches the services."""

    def __init__(self, bot: ImagineBot) -> None:
        self.bot = bot


def create_bot(
    services: Services,
    *,
    fetch_image: ImageFetcher | None = None,
    progress_interval: float = 3.0,
    dev_guild_id: int | None = None,
) -> ImagineBot:
    """Build the bot on started `services` (call inside the running event loop).

    The dispatcher listener is added here rather than in `setup_hook`: it belongs to the
    dispatcher's lifetime, not to one Discord connection, and it must exist before recovered
    jobs can finish.
    """
    settings = getattr(services, "settings", None)
    if dev_guild_id is None:
        dev_guild_id = getattr(settings, "dev_guild_id", None)
    if settings is not None:
        configure_decodes(settings.max_image_decodes)
    bot = ImagineBot(
        services, fetch_image=fetch_image, progress_interval=progress_interval, dev_guild_id=dev_guild_id
    )
    services.dispatcher.add_listener(bot.messenger.on_update)
    return bot
