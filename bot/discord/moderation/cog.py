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

import contextlib
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import moderation
from bot.core.durations import parse_when
from bot.core.moderation import (
    RuleError,
    rule_text,
    validate_rule,
)
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
from bot.discord.replies import clip
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

    @mod.command(name="history", description="What the bot made here, newest first")
    @app_commands.describe(
        user="Only this member's jobs",
        text="Only prompts containing this text",
        status="Only jobs with this status",
        since="From this date (YYYY-MM-DD, UTC) or this long ago (7d)",
        until="Up to this date (YYYY-MM-DD, UTC, inclusive) or this long ago",
    )
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

    @mod.command(name="job", description="A job's details, images, lineage and actions")
    @app_commands.describe(id="The job id (from /mod history or the result message)")
    async def job(self, interaction: discord.Interaction, id: str) -> None:
        if await self.guard(interaction) is None:
            return
        await send_job_details(self, interaction, id)

    # -- bans ----------------------------------------------------------------------------------

    @mod.command(name="ban", description="Stop a member from making images here")
    @app_commands.describe(
        user="Who to ban",
        reason="Shown to them when they try",
        duration="How long: 30m, 12h, 7d, 2w (empty: permanent)",
    )
    async def ban(
        self, interaction: discord.Interaction, user: discord.User, reason: str = "", duration: str = ""
    ) -> None:
        if await self.guard(interaction) is None:
            return
        await self.ban_user(interaction, user.id, reason, duration, user=user)

    @mod.command(name="unban", description="Lift a member's ban")
    @app_commands.describe(user="Whose ban to lift")
    async def unban(self, interaction: discord.Interaction, user: discord.User) -> None:
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

    @mod.command(name="bans", description="Who is banned, why, and until when")
    async def bans(self, interaction: discord.Interaction) -> None:
        if await self.guard(interaction) is None:
            return
        active = await self.store.bans(interaction.guild_id, now=moderation.clock())
        await reply(interaction, embed=bans_embed(active[: MAX_LIST * 2]))

    # -- banned words --------------------------------------------------------------------------

    @words.command(name="add", description="Refuse prompts containing a word, phrase or expression")
    @app_commands.describe(
        pattern="A word or phrase (or a regular expression with regex on)",
        regex="Treat it as a regular expression",
    )
    async def words_add(self, interaction: discord.Interaction, pattern: str, regex: bool = False) -> None:
        if await self.guard(interaction) is None:
            return
        try:
            stored = validate_rule(pattern, regex)
        except RuleError as exc:
            await reply(interaction, str(exc))
            return
        existing = await self.store.banned_words(interaction.guild_id)
        if any(rule.pattern == stored and bool(rule.is_regex) == regex for rule in existing):
            await reply(interaction, f"`{stored}` is already on the list.")
            return
        rule = await self.store.add_banned_word(interaction.guild_id, stored, regex, interaction.user.id)
        shown = rule_text(rule)
        await self.record(
            interaction,
            "word_add",
            f"added the banned {'expression' if regex else 'word'} `{shown}`",
        )
        await reply(interaction, f"Added `{shown}`. Prompts containing it are refused from now on.")

    @words.command(name="remove", description="Allow a banned word or expression again")
    @app_commands.describe(pattern="The word, phrase or expression, as listed")
    async def words_remove(self, interaction: discord.Interaction, pattern: str) -> None:
        if await self.guard(interaction) is None:
            return
        candidates = [pattern.strip()]
        if pattern.startswith("/") and pattern.endswith("/") and len(pattern) > 2:
            candidates.insert(0, pattern[1:-1])
        with contextlib.suppress(RuleError):  # words are stored normalised
            candidates.append(validate_rule(pattern, False))
        for candidate in dict.fromkeys(candidates):
            if await self.store.remove_banned_word(interaction.guild_id, candidate, interaction.user.id):
                await self.record(interaction, "word_remove", f"removed the banned word `{candidate}`")
                await reply(interaction, f"Removed `{candidate}`.")
                return
        rules = await self.store.banned_words(interaction.guild_id)
        if any(rule.guild_id is None and rule.pattern in candidates for rule in rules):
            await reply(
                interaction,
                f"`{clip(pattern, 100)}` is a rule for every server, set by the bot's operator; "
                "only the operator can remove it.",
            )
            return
        await reply(interaction, f"`{clip(pattern, 100)}` is not on the list; see `/mod words list`.")

    @words.command(name="list", description="The banned words and expressions")
    async def words_list(self, interaction: discord.Interaction) -> None:
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

    @mod.command(name="reports", description="Work through open reports")
    async def reports(self, interaction: discord.Interaction) -> None:
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

    @mod.command(name="audit", description="Recent moderator actions")
    @app_commands.describe(limit="How many entries (1-50)")
    async def audit(
        self, interaction: discord.Interaction, limit: app_commands.Range[int, 1, 50] = 20
    ) -> None:
        if await self.guard(interaction) is None:
            return
        await reply(
            interaction, embed=audit_embed(await self.store.audit_log(interaction.guild_id, limit=limit))
        )

    # -- channels and settings -----------------------------------------------------------------

    @channels.command(
        name="allow", description="Let the bot answer /imagine in this channel (the first one limits it)"
    )
    @app_commands.describe(channel="The channel")
    async def channels_allow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        await self.guarded(interaction, self.allow_channel, channel)

    @channels.command(name="disallow", description="Stop answering /imagine in this channel")
    @app_commands.describe(channel="The channel")
    async def channels_disallow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        await self.guarded(interaction, self.disallow_channel, channel)

    @channels.command(name="spoiler", description="Spoiler results in this channel, or stop")
    @app_commands.describe(channel="The channel", enabled="Spoiler results there")
    async def channels_spoiler(
        self, interaction: discord.Interaction, channel: discord.TextChannel, enabled: bool
    ) -> None:
        await self.guarded(interaction, self.spoiler_channel, channel, enabled)

    @channels.command(name="log", description="Post moderator actions and reports to a channel (empty: stop)")
    @app_commands.describe(channel="The log channel; leave out to stop logging")
    async def channels_log(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        if await self.guard(interaction) is None:
            return
        await self._save(
            interaction,
            "log_channel",
            f"set the log channel to {channel.mention}" if channel else "turned the log channel off",
            log_channel_id=channel.id if channel else None,
        )

    @channels.command(name="show", description="The channel settings")
    async def channels_show(self, interaction: discord.Interaction) -> None:
        await self.guarded(interaction, self.show_settings)

    @settings.command(name="show", description="All of this server's bot settings")
    async def settings_show(self, interaction: discord.Interaction) -> None:
        await self.guarded(interaction, self.show_settings)

    @settings.command(name="buttons", description="Who may click a result's buttons")
    @app_commands.describe(who="anyone: every member (default); author: only the job's author")
    @app_commands.choices(
        who=[
            app_commands.Choice(name="anyone", value="anyone"),
            app_commands.Choice(name="author", value="author"),
        ]
    )
    async def settings_buttons(self, interaction: discord.Interaction, who: app_commands.Choice[str]) -> None:
        await self.guarded(interaction, self.set_button_access, who.value)

    @settings.command(name="stealth", description="Whether members may use Stealth mode")
    @app_commands.describe(allow="on: members may choose Stealth in /settings or /stealth; off: all public")
    async def settings_stealth(self, interaction: discord.Interaction, allow: bool) -> None:
        await self.guarded(interaction, self.set_stealth, allow)

    @settings.command(name="limits", description="How many jobs each member may have running and waiting")
    @app_commands.describe(
        running="Jobs one member may have running at once (1-10)",
        queued="Jobs one member may have waiting to start (1-50)",
        reset="Go back to the bot's defaults",
    )
    async def settings_limits(
        self,
        interaction: discord.Interaction,
        running: app_commands.Range[int, 1, MAX_RUNNING_LIMIT] | None = None,
        queued: app_commands.Range[int, 1, MAX_QUEUED_LIMIT] | None = None,
        reset: bool = False,
    ) -> None:
        await self.guarded(interaction, self.set_user_limits, running, queued, reset)

    @mod.command(
        name="role", description="The role that may moderate besides Manage Messages (needs Manage Server)"
    )
    @app_commands.describe(role="The moderator role; leave out to clear it")
    async def role(self, interaction: discord.Interaction, role: discord.Role | None = None) -> None:
        if await self.guard(interaction) is None:
            return
        if not interaction.permissions.manage_guild:
            await reply(interaction, "Setting the moderator role needs the Manage Server permission.")
            return
        await self._save(
            interaction,
            "moderator_role",
            f"set the moderator role to {role.mention}" if role else "cleared the moderator role",
            moderator_role_id=role.id if role else None,
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ModerationCog(bot))
