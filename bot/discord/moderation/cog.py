"""`/mod`: history review, job details and lineage, hide/unhide, bans, banned words, reports,
the audit log, channel settings and the server's button and per-user limit settings; plus the
`Report job` message menu for every member.

Who may moderate: `/mod` is registered with Manage Messages as its default permission (Discord
hides it from everyone else) and every command and button checks again at run time with
`is_moderator` (Manage Messages or the guild's moderator role), because server admins can
override command visibility. Every moderator action is written to the store's audit log and,
when the guild has one, posted to its log channel.
"""

from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import moderation
from bot.core.durations import parse_when
from bot.discord.context_menu import ContextMenuCog
from bot.discord.moderation.desk import reply
from bot.discord.moderation.embeds import (
    PAGE_SIZE,
    audit_embed,
    bans_embed,
    words_embed,
)
from bot.discord.moderation.modals import ReasonModal
from bot.discord.moderation.settings_desk import MAX_QUEUED_LIMIT, MAX_RUNNING_LIMIT, SettingsDesk
from bot.discord.moderation.views import HistoryView, ReportsView, send_job_details
from storage.models import JobStatus
from storage.queries import HistoryQuery

log = logging.getLogger(__name__)

STATUS_CHOICES = [app_commands.Choice(name=status.value, value=status.value) for status in JobStatus]
MAX_LIST = 25


class ModerationCog(SettingsDesk, ContextMenuCog):
    """The moderators' commands and the members' report menu."""

    mod = app_commands.Group(
        name="mod",
        description="Moderation: history, bans, banned words, reports",
        guild_only=True,
        default_permissions=discord.Permissions(manage_messages=True),
    )
    words = app_commands.Group(name="words", description="Banned words and expressions", parent=mod)
    channels = app_commands.Group(
        name="channels", description="Where the bot answers and where results are spoilered", parent=mod
    )
    settings = app_commands.Group(
        name="settings", description="Who may use result buttons, and per-member job limits", parent=mod
    )

    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Report job", callback=self.report_job)
        self.menu.guild_only = True

    # -- history and job details ---------------------------------------------------------------

    @mod.command(name="history")
    @app_commands.choices(status=STATUS_CHOICES)
    async def history(
        self,
        interaction: discord.Interaction,
        user: discord.User | None = None,
        text: str | None = None,
        status: app_commands.Choice[str] | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> None:
        """What the bot made here, newest first

        Args:
            user: Only this member's jobs
            text: Only prompts containing this text
            status: Only jobs with this status
            since: From this date (YYYY-MM-DD, UTC) or this long ago (7d)
            until: Up to this date (YYYY-MM-DD, UTC, inclusive) or this long ago
        """
        if await self.guard(interaction) is None:
            return
        now = moderation.clock()
        try:
            start, end = parse_when(since, now), parse_when(until, now, end=True)
        except ValueError as exc:
            await reply(interaction, str(exc))
            return
        if start is not None and end is not None and start >= end:
            await reply(interaction, "`since` must be before `until`.")
            return
        query = HistoryQuery(
            user_id=user.id if user else None,
            guild_id=interaction.guild_id,
            text=text.strip() if text and text.strip() else None,
            status=status.value if status else None,
            since=start,
            until=end,
            limit=PAGE_SIZE,
        )
        await interaction.response.defer(ephemeral=True, thinking=True)
        view = HistoryView(self, interaction.user.id, query)
        embeds, files = await view.load()
        if not view.jobs:
            await interaction.followup.send("No jobs match.", ephemeral=True)
            return
        await interaction.followup.send(embeds=embeds, files=files, view=view, ephemeral=True)

    @mod.command(name="job")
    async def job(self, interaction: discord.Interaction, id: str) -> None:
        """A job's details, images, lineage and actions

        Args:
            id: The job id (from /mod history or the result message)
        """
        if await self.guard(interaction) is None:
            return
        await send_job_details(self, interaction, id)

    # -- bans ----------------------------------------------------------------------------------

    @mod.command(name="ban")
    async def ban(
        self, interaction: discord.Interaction, user: discord.User, reason: str = "", duration: str = ""
    ) -> None:
        """Stop a member from making images here

        Args:
            user: Who to ban
            reason: Shown to them when they try
            duration: How long: 30m, 12h, 7d, 2w (empty: permanent)
        """
        if await self.guard(interaction) is None:
            return
        await self.ban_user(interaction, user.id, reason, duration, user=user)

    @mod.command(name="unban")
    async def unban(self, interaction: discord.Interaction, user: discord.User) -> None:
        """Lift a member's ban

        Args:
            user: Whose ban to lift
        """
        if await self.guard(interaction) is None:
            return
        if not await self.store.unban(user.id, interaction.guild_id, interaction.user.id):
            everywhere = await self.store.active_ban(user.id, None, moderation.clock())
            if everywhere is not None:
                await reply(
                    interaction,
                    f"{user.mention} is banned on every server by the bot's operator; "
                    "only the operator can lift that.",
                )
                return
            await reply(interaction, f"{user.mention} is not banned.")
            return
        await self.record(interaction, "unban", f"lifted the ban on {user.mention}")
        await reply(interaction, f"Lifted the ban on {user.mention}.")

    @mod.command(name="bans")
    async def bans(self, interaction: discord.Interaction) -> None:
        """Who is banned, why, and until when"""
        if await self.guard(interaction) is None:
            return
        active = await self.store.bans(interaction.guild_id, now=moderation.clock())
        await reply(interaction, embed=bans_embed(active[: MAX_LIST * 2]))

    # -- banned words --------------------------------------------------------------------------

    @words.command(name="add")
    async def words_add(self, interaction: discord.Interaction, pattern: str, regex: bool = False) -> None:
        """Refuse prompts containing a word, phrase or expression

        Args:
            pattern: A word or phrase (or a regular expression with regex on)
            regex: Treat it as a regular expression
        """
        await self.guarded(interaction, self.add_word, pattern, regex)

    @words.command(name="remove")
    async def words_remove(self, interaction: discord.Interaction, pattern: str) -> None:
        """Allow a banned word or expression again

        Args:
            pattern: The word, phrase or expression, as listed
        """
        await self.guarded(interaction, self.remove_word, pattern)

    @words.command(name="list")
    async def words_list(self, interaction: discord.Interaction) -> None:
        """The banned words and expressions"""
        if await self.guard(interaction) is None:
            return
        await reply(interaction, embed=words_embed(await self.store.banned_words(interaction.guild_id)))

    # -- reports -------------------------------------------------------------------------------

    async def report_job(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """`Report job` on a result message: any member, with a reason, for the moderators."""
        job = await self.store.find_job_by_message(message.id)
        if job is None:
            await reply(
                interaction, "That message is not an image from this bot, so there is nothing to report."
            )
            return

        async def submit(modal_interaction: discord.Interaction, reason: str) -> None:
            await self.file_report(modal_interaction, job.id, reason)

        await interaction.response.send_modal(
            ReasonModal(
                "Report this job",
                "What is wrong with it?",
                submit,
                required=True,
                placeholder="The moderators read this.",
            )
        )

    @mod.command(name="reports")
    async def reports(self, interaction: discord.Interaction) -> None:
        """Work through open reports"""
        if await self.guard(interaction) is None:
            return
        assert interaction.guild_id is not None  # guard() refuses outside a server
        view = ReportsView(self, interaction.user.id, interaction.guild_id)
        content, embeds, files = await view.load()
        if not view.reports:
            await reply(interaction, content)
            return
        await reply(interaction, content, embeds=embeds, files=files, view=view)

    # -- audit ---------------------------------------------------------------------------------

    @mod.command(name="audit")
    async def audit(
        self, interaction: discord.Interaction, limit: app_commands.Range[int, 1, 50] = 20
    ) -> None:
        """Recent moderator actions

        Args:
            limit: How many entries (1-50)
        """
        if await self.guard(interaction) is None:
            return
        await reply(
            interaction, embed=audit_embed(await self.store.audit_log(interaction.guild_id, limit=limit))
        )

    # -- channels and settings -----------------------------------------------------------------

    @channels.command(name="allow")
    async def channels_allow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Let the bot answer /imagine in this channel (the first one limits it)

        Args:
            channel: The channel
        """
        await self.guarded(interaction, self.allow_channel, channel)

    @channels.command(name="disallow")
    async def channels_disallow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Stop answering /imagine in this channel

        Args:
            channel: The channel
        """
        await self.guarded(interaction, self.disallow_channel, channel)

    @channels.command(name="spoiler")
    async def channels_spoiler(
        self, interaction: discord.Interaction, channel: discord.TextChannel, enabled: bool
    ) -> None:
        """Spoiler results in this channel, or stop

        Args:
            channel: The channel
            enabled: Spoiler results there
        """
        await self.guarded(interaction, self.spoiler_channel, channel, enabled)

    @channels.command(name="log")
    async def channels_log(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        """Post moderator actions and reports to a channel (empty: stop)

        Args:
            channel: The log channel; leave out to stop logging
        """
        await self.guarded(interaction, self.set_log_channel, channel)

    @channels.command(name="show")
    async def channels_show(self, interaction: discord.Interaction) -> None:
        """The channel settings"""
        await self.guarded(interaction, self.show_settings)

    @settings.command(name="show")
    async def settings_show(self, interaction: discord.Interaction) -> None:
        """All of this server's bot settings"""
        await self.guarded(interaction, self.show_settings)

    @settings.command(name="buttons")
    @app_commands.choices(
        who=[
            app_commands.Choice(name="anyone", value="anyone"),
            app_commands.Choice(name="author", value="author"),
        ]
    )
    async def settings_buttons(self, interaction: discord.Interaction, who: app_commands.Choice[str]) -> None:
        """Who may click a result's buttons

        Args:
            who: anyone: every member (default); author: only the job's author
        """
        await self.guarded(interaction, self.set_button_access, who.value)

    @settings.command(name="stealth")
    async def settings_stealth(self, interaction: discord.Interaction, allow: bool) -> None:
        """Whether members may use Stealth mode

        Args:
            allow: on: members may choose Stealth in /settings or /stealth; off: all public
        """
        await self.guarded(interaction, self.set_stealth, allow)

    @settings.command(name="limits")
    async def settings_limits(
        self,
        interaction: discord.Interaction,
        running: app_commands.Range[int, 1, MAX_RUNNING_LIMIT] | None = None,
        queued: app_commands.Range[int, 1, MAX_QUEUED_LIMIT] | None = None,
        reset: bool = False,
    ) -> None:
        """How many jobs each member may have running and waiting

        Args:
            running: Jobs one member may have running at once (1-10)
            queued: Jobs one member may have waiting to start (1-50)
            reset: Go back to the bot's defaults
        """
        await self.guarded(interaction, self.set_user_limits, running, queued, reset)

    @mod.command(name="role")
    async def role(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        """The role that may moderate besides Manage Messages (needs Manage Server)

        Args:
            role: The moderator role; leave out to clear it
        """
        await self.guarded(interaction, self.set_moderator_role, role)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ModerationCog(bot))
