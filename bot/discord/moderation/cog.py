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

import asyncio
import contextlib
import dataclasses
import io
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import moderation
from bot.core.limits import Limits
from bot.core.moderation import (
    RuleError,
    format_until,
    parse_duration,
    parse_when,
    rule_text,
    validate_rule,
)
from bot.discord import render
from bot.discord.moderation.embeds import (
    PAGE_SIZE,
    audit_embed,
    bans_embed,
    job_embed,
    thumbnail_file,
    words_embed,
)
from bot.discord.moderation.modals import ReasonModal
from bot.discord.moderation.views import HistoryView, JobActionsView, ReportsView
from bot.discord.permissions import NOT_IN_THIS_SERVER, is_moderator
from bot.discord.replies import clip, message_text
from storage.models import GuildSettings, Job, JobStatus, Report, ReportState
from storage.queries import HistoryPage, HistoryQuery
from storage.store import Store

log = logging.getLogger(__name__)

NOT_MODERATOR = "Only moderators can do this: it needs Manage Messages or this server's moderator role."
STATUS_CHOICES = [app_commands.Choice(name=status.value, value=status.value) for status in JobStatus]
MAX_LIST = 25
MAX_RUNNING_LIMIT = 10  # per-member limits a moderator may set; operators' own defaults are not capped
MAX_QUEUED_LIMIT = 50


async def reply(interaction: discord.Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer ephemerally whether or not the interaction was answered already."""
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    if content is not None:
        content = message_text(content)
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, **kwargs)  # type: ignore[arg-type]
    else:
        await interaction.response.send_message(content, ephemeral=True, **kwargs)


class ModerationCog(commands.Cog):
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
        self.report_menu = app_commands.ContextMenu(name="Report job", callback=self.report_job)
        self.report_menu.guild_only = True

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.report_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.report_menu.name, type=self.report_menu.type)

    @property
    def store(self) -> Store:
        return self.bot.services.store  # type: ignore[attr-defined]

    # -- plumbing ------------------------------------------------------------------------------

    async def guard(self, interaction: discord.Interaction) -> GuildSettings | None:
        """The guild's settings when the user may moderate; otherwise says no and returns None."""
        if interaction.guild_id is None:
            await reply(interaction, "Moderation works inside a server only.")
            return None
        settings = await self.store.guild_settings(interaction.guild_id)
        if is_moderator(interaction, settings):
            return settings
        await reply(interaction, NOT_MODERATOR)
        return None

    async def record(self, interaction: discord.Interaction, action: str, summary: str) -> None:
        """Log a moderator action and post it to the guild's log channel when one is set.

        The audit entry is written elsewhere: by the store, in the same transaction as the change
        (bans, hides, words, reports), or by `_save` for settings."""
        log.info(
            "moderation %s by %s in guild %s: %s", action, interaction.user.id, interaction.guild_id, summary
        )
        await self.post_log(interaction.guild_id, f"🛡️ <@{interaction.user.id}> {summary}")

    async def post_log(self, guild_id: int | None, text: str) -> None:
        if guild_id is None:
            return
        settings = await self.store.guild_settings(guild_id)
        if not settings.log_channel_id:
            return
        channel = self.bot.get_channel(settings.log_channel_id) or self.bot.get_partial_messageable(
            settings.log_channel_id
        )
        try:
            await channel.send(clip(text, 2000), allowed_mentions=discord.AllowedMentions.none())  # type: ignore[union-attr]
        except discord.HTTPException as exc:
            log.warning("could not post to log channel %s: %s", settings.log_channel_id, exc)

    async def thumbnails(self, jobs: list[Job]) -> list[discord.File]:
        """Small PNGs of each job's result (grid or single image), named `<job id>.png`."""
        files = []
        for job in jobs:
            picture = job.grid if job.grid is not None else (job.cells[0] if job.cells else None)
            if picture is None:
                continue
            try:
                data = await asyncio.to_thread(self.store.files.read_bytes, picture.path)
                files.append(await asyncio.to_thread(thumbnail_file, data, f"{job.id}.png"))
            except OSError as exc:
                log.warning("job %s: image %s unreadable: %s", job.id, picture.path, exc)
        return files

    async def _job_in_guild(
        self, interaction: discord.Interaction, job_id: str, *, answer: bool = True
    ) -> Job | None:
        """The job when it belongs to this server; else None, after saying so when `answer`."""
        job = await self.store.get_job(job_id.strip())
        if job is None or job.guild_id != interaction.guild_id:
            if answer:
                await reply(interaction, NOT_IN_THIS_SERVER.format(job_id=clip(job_id, 40)))
            return None
        return job

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

    async def history_page(self, query: HistoryQuery, cursor: str | None) -> HistoryPage:
        return await self.store.history(dataclasses.replace(query, before=cursor))

    @mod.command(name="job", description="A job's details, images, lineage and actions")
    @app_commands.describe(id="The job id (from /mod history or the result message)")
    async def job(self, interaction: discord.Interaction, id: str) -> None:
        if await self.guard(interaction) is None:
            return
        await self.send_job_details(interaction, id)

    async def send_job_details(self, interaction: discord.Interaction, job_id: str) -> None:
        job = await self._job_in_guild(interaction, job_id)
        if job is None:
            return
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        lineage = await self.store.lineage(job.id)
        images = ([job.grid] if job.grid is not None else []) + job.cells
        # One message carries them all: share the upload limit (large PNGs become JPEGs).
        limit = render.filesize_limit(interaction.guild)
        budget = limit // max(len(images), 1) - 64 * 1024
        files = []
        for image in images:
            try:
                data = await asyncio.to_thread(self.store.files.read_bytes, image.path)
            except OSError as exc:
                log.warning("job %s: image %s unreadable: %s", job.id, image.path, exc)
                continue
            stem = "grid" if image.index < 0 else f"image_{image.index + 1}"
            name, data = await asyncio.to_thread(render.fit_upload, data, stem, budget)
            files.append(discord.File(io.BytesIO(data), filename=name))
        messages = await self.store.job_messages(job.id)
        embed = job_embed(job, lineage, [file.filename for file in files], messages)
        related = [*lineage.ancestors, *lineage.descendants]
        view = JobActionsView(self, interaction.user.id, job, related)
        await interaction.followup.send(embed=embed, files=files[:10], view=view, ephemeral=True)

    # -- hide / unhide -------------------------------------------------------------------------

    async def hide_job(
        self, interaction: discord.Interaction, job_id: str, reason: str, *, answer: bool = True
    ) -> bool:
        """Hide a job: its messages become a notice without buttons; the images stay stored.
        `answer=False` leaves the interaction unanswered for a caller that redraws a view."""
        job = await self._job_in_guild(interaction, job_id, answer=answer)
        if job is None:
            return False
        if job.hidden:
            if answer:
                await reply(interaction, f"Job `{job.id}` is already hidden.")
            return False
        job = await self.store.set_hidden(job.id, True, interaction.user.id, reason)
        changed = await self.bot.messenger.replace_everywhere(job, render.HIDDEN_NOTICE)  # type: ignore[attr-defined]
        await self.record(
            interaction,
            "hide",
            f"hid job `{job.id}` by <@{job.user_id}>" + (f": {reason}" if reason else ""),
        )
        if answer:
            await reply(interaction, f"Hid job `{job.id}`; {changed} message(s) replaced by a notice.")
        return True

    async def unhide_job(self, interaction: discord.Interaction, job_id: str) -> bool:
        """Undo a hide: the messages show the result and its buttons again."""
        job = await self._job_in_guild(interaction, job_id)
        if job is None:
            return False
        if not job.hidden:
            await reply(interaction, f"Job `{job.id}` is not hidden.")
            return False
        job = await self.store.set_hidden(job.id, False, interaction.user.id, "")
        rendered = await render.job_message(
            job,
            self.bot.services,  # type: ignore[attr-defined]
            filesize_limit=render.filesize_limit(interaction.guild),
        )
        changed = await self.bot.messenger.edit_everywhere(job, rendered)  # type: ignore[attr-defined]
        await self.record(interaction, "unhide", f"unhid job `{job.id}` by <@{job.user_id}>")
        await reply(interaction, f"Unhid job `{job.id}`; {changed} message(s) restored.")
        return True

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

    async def ban_user(
        self,
        interaction: discord.Interaction,
        user_id: int,
        reason: str,
        duration: str,
        *,
        answer: bool = True,
        user: discord.abc.User | None = None,
    ) -> bool:
        """Ban (or re-ban with new terms); a duration that can't be read changes nothing, and
        neither does banning oneself, a bot or a moderator (the command and every "Ban author"
        button come through here, so all refuse alike). Refusals are always answered.
        `user`: the target when the caller has it (the command does), else it is looked up."""
        refusal = await self.ban_refusal(interaction, user_id, user)
        if refusal is not None:
            await reply(interaction, refusal)
            return False
        try:
            length = parse_duration(duration)
        except ValueError as exc:
            await reply(interaction, str(exc))
            return False
        now = moderation.clock()
        expires = now + length if length is not None else None
        ban = await self.store.ban(
            user_id, interaction.guild_id, reason.strip(), interaction.user.id, expires_at=expires
        )
        until = format_until(ban.expires_at)
        await self.record(
            interaction,
            "ban",
            f"banned <@{user_id}> {until}" + (f": {reason}" if reason else ""),
        )
        if answer:
            await reply(
                interaction, f"Banned <@{user_id}> {until}." + (f" Reason: {reason}" if reason else "")
            )
        return True

    async def ban_refusal(
        self, interaction: discord.Interaction, user_id: int, user: discord.abc.User | None = None
    ) -> str | None:
        """Why `user_id` may not be banned here (it is the moderator, a bot or a moderator), or None."""
        if user_id == interaction.user.id:
            return "You can't ban yourself."
        member = user if isinstance(user, discord.Member) else None
        guild = interaction.guild
        if member is None and guild is not None:
            member = guild.get_member(user_id)
            if member is None:  # not cached (the bot has no members intent): ask Discord
                with contextlib.suppress(discord.HTTPException):  # NotFound: not in the server
                    member = await guild.fetch_member(user_id)
        target = member or user
        if target is not None and target.bot:
            return "You can't ban a bot."
        if member is not None and member.guild_permissions.manage_messages:
            return f"<@{user_id}> is a moderator; take away their role first."
        return None

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

    async def file_report(self, interaction: discord.Interaction, job_id: str, reason: str) -> None:
        if not reason:
            await reply(interaction, "Please say what is wrong, so the moderators know what to look for.")
            return
        report = await self.store.add_report(job_id, interaction.guild_id, interaction.user.id, reason)
        await self.post_log(
            interaction.guild_id,
            f"🚩 <@{interaction.user.id}> reported job `{job_id}`: {clip(reason, 300)} "
            f"(report {report.id}; see /mod reports)",
        )
        await reply(interaction, "Thanks, the moderators will look at it.")

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

    async def open_reports(self, guild_id: int) -> list[Report]:
        return list(await self.store.reports(guild_id, state=ReportState.OPEN.value))

    async def close_report(self, interaction: discord.Interaction, report: Report, state: str) -> None:
        await self.store.resolve_report(report.id, interaction.user.id, state)
        await self.record(
            interaction,
            "report_" + state,
            f"marked report {report.id} on job `{report.job_id}` {state}",
        )

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
        settings = await self.guard(interaction)
        if settings is None:
            return
        allowed = [int(c) for c in settings.allowed_channel_ids or []]
        if channel.id in allowed:
            await reply(interaction, f"{channel.mention} is already allowed.")
            return
        await self._save(
            interaction,
            "channel_allow",
            f"allowed /imagine in {channel.mention}",
            allowed_channel_ids=[*allowed, channel.id],
        )

    @channels.command(name="disallow", description="Stop answering /imagine in this channel")
    @app_commands.describe(channel="The channel")
    async def channels_disallow(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        settings = await self.guard(interaction)
        if settings is None:
            return
        allowed = [int(c) for c in settings.allowed_channel_ids or []]
        if channel.id not in allowed:
            await reply(interaction, f"{channel.mention} is not on the allowed list.")
            return
        rest = [c for c in allowed if c != channel.id]
        note = " No list is left, so the bot answers in every channel." if not rest else ""
        await self._save(
            interaction,
            "channel_disallow",
            f"removed {channel.mention} from the allowed channels.{note}",
            allowed_channel_ids=rest,
        )

    @channels.command(name="spoiler", description="Spoiler results in this channel, or stop")
    @app_commands.describe(channel="The channel", enabled="Spoiler results there")
    async def channels_spoiler(
        self, interaction: discord.Interaction, channel: discord.TextChannel, enabled: bool
    ) -> None:
        settings = await self.guard(interaction)
        if settings is None:
            return
        current = [int(c) for c in settings.spoiler_channel_ids or []]
        if enabled:
            updated = current if channel.id in current else [*current, channel.id]
        else:
            updated = [c for c in current if c != channel.id]
        await self._save(
            interaction,
            "channel_spoiler",
            f"{'spoilers' if enabled else 'no longer spoilers'} results in {channel.mention}",
            spoiler_channel_ids=updated,
        )

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
        settings = await self.guard(interaction)
        if settings is None:
            return
        await reply(interaction, self.settings_text(settings))

    def settings_text(self, settings: GuildSettings) -> str:
        """Every server setting, as `/mod channels show` and `/mod settings show` print it."""

        def mentions(ids: list[Any]) -> str:
            return ", ".join(f"<#{c}>" for c in ids) or "none"

        allowed = (
            mentions(settings.allowed_channel_ids or []) if settings.allowed_channel_ids else "every channel"
        )
        role = (
            f"<@&{settings.moderator_role_id}>"
            if settings.moderator_role_id
            else "none (Manage Messages only)"
        )
        buttons = (
            "only the job's author (and moderators)"
            if settings.author_only_buttons
            else "anyone in the channel"
        )
        limits = self.user_limits(settings)
        running, queued = limits.max_running_per_user, limits.max_queued_per_user
        own = settings.max_running_per_user is not None or settings.max_queued_per_user is not None
        lines = [
            f"**/imagine answers in:** {allowed}",
            f"**Results spoilered in:** {mentions(settings.spoiler_channel_ids or [])}",
            f"**Log channel:** {f'<#{settings.log_channel_id}>' if settings.log_channel_id else 'none'}",
            f"**Moderator role:** {role}",
            f"**Result buttons usable by:** {buttons}",
            f"**Per-member limits:** {running} running, {queued} waiting"
            + (" (this server's)" if own else " (the bot's defaults)"),
        ]
        return "\n".join(lines)

    def default_limits(self) -> Limits:
        """The operator's limits (IMAGINE_MAX_RUNNING_PER_USER / _QUEUED_), used where a server
        has none of its own."""
        dispatcher = getattr(self.bot.services, "dispatcher", None)  # type: ignore[attr-defined]
        return getattr(dispatcher, "limits", None) or Limits()

    def user_limits(self, settings: GuildSettings) -> Limits:
        """The limits in force here: the server's own, else the bot's defaults; the same rule the
        job service applies (`JobService._limits_for`)."""
        return self.default_limits().with_overrides(
            settings.max_running_per_user, settings.max_queued_per_user
        )

    @settings.command(name="show", description="All of this server's bot settings")
    async def settings_show(self, interaction: discord.Interaction) -> None:
        settings = await self.guard(interaction)
        if settings is None:
            return
        await reply(interaction, self.settings_text(settings))

    @settings.command(name="buttons", description="Who may click a result's buttons")
    @app_commands.describe(who="anyone: every member (default); author: only the job's author")
    @app_commands.choices(
        who=[
            app_commands.Choice(name="anyone", value="anyone"),
            app_commands.Choice(name="author", value="author"),
        ]
    )
    async def settings_buttons(self, interaction: discord.Interaction, who: app_commands.Choice[str]) -> None:
        settings = await self.guard(interaction)
        if settings is None:
            return
        author_only = who.value == "author"
        if bool(settings.author_only_buttons) == author_only:
            current = "only a job's author" if author_only else "anyone"
            await reply(interaction, f"Result buttons are already usable by {current}.")
            return
        summary = (
            "made result buttons usable only by the job's author (and moderators)"
            if author_only
            else "made result buttons usable by anyone"
        )
        await self._save(interaction, "author_only_buttons", summary, author_only_buttons=author_only)

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
        settings = await self.guard(interaction)
        if settings is None:
            return
        if reset and (running is not None or queued is not None):
            await reply(interaction, "Give either `reset` or new limits, not both.")
            return
        if not reset and running is None and queued is None:
            await reply(interaction, "Give `running`, `queued` or both (or `reset` for the bot's defaults).")
            return
        # Discord enforces the ranges; checked again so a stale client can't store nonsense.
        if running is not None and not 1 <= running <= MAX_RUNNING_LIMIT:
            await reply(interaction, f"`running` must be 1 to {MAX_RUNNING_LIMIT}.")
            return
        if queued is not None and not 1 <= queued <= MAX_QUEUED_LIMIT:
            await reply(interaction, f"`queued` must be 1 to {MAX_QUEUED_LIMIT}.")
            return
        if reset:
            fields: dict[str, int | None] = {"max_running_per_user": None, "max_queued_per_user": None}
        else:
            fields = {
                "max_running_per_user": running if running is not None else settings.max_running_per_user,
                "max_queued_per_user": queued if queued is not None else settings.max_queued_per_user,
            }
        if (settings.max_running_per_user, settings.max_queued_per_user) == tuple(fields.values()):
            now = self.user_limits(settings)
            await reply(
                interaction,
                f"The limits are already {now.max_running_per_user} running and "
                f"{now.max_queued_per_user} waiting jobs per member.",
            )
            return
        new = self.default_limits().with_overrides(
            fields["max_running_per_user"], fields["max_queued_per_user"]
        )
        summary = (
            "reset the per-member limits to the bot's defaults" if reset else "set the per-member limits"
        ) + (
            f" ({new.max_running_per_user} running, {new.max_queued_per_user} waiting jobs;"
            " jobs already queued keep theirs)"
        )
        await self._save(interaction, "user_limits", summary, **fields)

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

    async def _save(self, interaction: discord.Interaction, action: str, summary: str, **fields: Any) -> None:
        await self.store.update_guild_settings(interaction.guild_id, **fields)  # type: ignore[arg-type]  # guarded
        await self.store.audit(interaction.guild_id, interaction.user.id, action, details=dict(fields))
        await self.record(interaction, action, summary)
        await reply(interaction, summary[0].upper() + summary[1:] + ("" if summary.endswith(".") else "."))


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ModerationCog(bot))
