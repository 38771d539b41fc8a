"""What the `/mod` commands and views do once a moderator is let in: the moderation desk.

`DeskActions` is the base of `ModerationCog` (cog.py), split off by responsibility: the cog
declares the slash commands and reads their arguments; the desk checks who may moderate, acts
(hide, unhide, ban, reports, settings), writes the audit trail and posts to the log channel. The
views (views.py) call these methods; the job details screen is there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord.ext import commands

from bot.core import moderation
from bot.core.durations import format_until, parse_duration
from bot.discord import render
from bot.discord.moderation.embeds import thumbnail_file
from bot.discord.permissions import NOT_IN_THIS_SERVER, is_moderator
from bot.discord.replies import clip, message_text
from storage.models import GuildSettings, Job, Report, ReportState
from storage.queries import HistoryPage, HistoryQuery
from storage.store import Store

log = logging.getLogger("bot.discord.moderation.cog")  # one logger name for /mod's lines

NOT_MODERATOR = "Only moderators can do this: it needs Manage Messages or this server's moderator role."


async def reply(interaction: discord.Interaction, content: str | None = None, **kwargs: Any) -> None:
    """Answer ephemerally whether or not the interaction was answered already."""
    kwargs.setdefault("allowed_mentions", discord.AllowedMentions.none())
    if content is not None:
        content = message_text(content)
    if interaction.response.is_done():
        await interaction.followup.send(content, ephemeral=True, **kwargs)  # type: ignore[arg-type]
    else:
        await interaction.response.send_message(content, ephemeral=True, **kwargs)


class DeskActions:
    """The moderation desk; see the module docstring."""

    bot: commands.Bot

    @property
    def store(self) -> Store:
        return self.bot.services.store  # type: ignore[attr-defined]

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

    async def guarded(
        self,
        interaction: discord.Interaction,
        action: Callable[..., Awaitable[None]],
        *args: object,
    ) -> None:
        """`action(interaction, settings, *args)` when the user may moderate (see `guard`)."""
        settings = await self.guard(interaction)
        if settings is not None:
            await action(interaction, settings, *args)

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

    async def job_in_guild(
        self, interaction: discord.Interaction, job_id: str, *, answer: bool = True
    ) -> Job | None:
        """The job when it belongs to this server; else None, after saying so when `answer`."""
        job = await self.store.get_job(job_id.strip())
        if job is None or job.guild_id != interaction.guild_id:
            if answer:
                await reply(interaction, NOT_IN_THIS_SERVER.format(job_id=clip(job_id, 40)))
            return None
        return job

    async def history_page(self, query: HistoryQuery, cursor: str | None) -> HistoryPage:
        return await self.store.history(dataclasses.replace(query, before=cursor))

    async def hide_job(
        self, interaction: discord.Interaction, job_id: str, reason: str, *, answer: bool = True
    ) -> bool:
        """Hide a job: its messages become a notice without buttons; the images stay stored.
        `answer=False` leaves the interaction unanswered for a caller that redraws a view."""
        job = await self.job_in_guild(interaction, job_id, answer=answer)
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
        job = await self.job_in_guild(interaction, job_id)
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

    async def open_reports(self, guild_id: int) -> list[Report]:
        return list(await self.store.reports(guild_id, state=ReportState.OPEN.value))

    async def close_report(self, interaction: discord.Interaction, report: Report, state: str) -> None:
        await self.store.resolve_report(report.id, interaction.user.id, state)
        await self.record(
            interaction,
            "report_" + state,
            f"marked report {report.id} on job `{report.job_id}` {state}",
        )
