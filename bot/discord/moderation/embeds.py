"""The moderators' embeds: jobs, lineage, bans, banned words, the audit log and reports."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import discord
from PIL import Image

from bot.core.durations import format_until
from bot.core.moderation import rule_text
from bot.discord.replies import clip
from storage.models import AuditEntry, Ban, BannedWord, Job, Report
from storage.queries import Lineage

log = logging.getLogger(__name__)

TimestampStyle = Literal["f", "F", "d", "D", "t", "T", "s", "S", "R"]

PAGE_SIZE = 5  # one embed (with its own thumbnail) per job; Discord allows 10 embeds a message
VIEW_TIMEOUT_S = 900.0  # an interaction token lives 15 minutes; after that the message is frozen
THUMBNAIL_PX = 160
PROMPT_PREVIEW = 180

STATUS_ICONS = {
    "queued": "⏳",
    "running": "⚙️",
    "done": "✅",
    "failed": "❌",
    "cancelled": "⏹️",
    "blocked": "⛔",
}


def stamp(when: datetime | None, style: TimestampStyle = "f") -> str:
    """A Discord timestamp, shown in each reader's own time zone."""
    return "—" if when is None else discord.utils.format_dt(when, style)


def job_line(job: Job) -> str:
    """One line about a job for lists and lineage trees."""
    icon = STATUS_ICONS.get(job.status, "•")
    hidden = " 🙈 hidden" if job.hidden else ""
    index = f" #{job.parent_index + 1}" if job.parent_index is not None else ""
    prompt = clip(job.prompt or job.raw_prompt, 60)
    return f"{icon} `{job.id[:8]}` **{job.kind}**{index} by <@{job.user_id}>{hidden} — {prompt}"


Messages = Sequence[tuple[int | None, int]]  # (channel id, message id), as Store.job_messages gives


def message_links(job: Job, messages: Messages | None = None) -> list[str]:
    """Links to the messages showing `job`, each in its own channel.

    `messages` comes from `Store.job_messages` (already de-duplicated); without it only the job's
    main result message is linked.
    """
    if messages is None:
        messages = [(job.channel_id, job.message_id)] if job.message_id else []
    guild = job.guild_id if job.guild_id is not None else "@me"
    return [
        f"https://discord.com/channels/{guild}/{channel_id}/{message_id}"
        for channel_id, message_id in messages
        if channel_id is not None
    ]


def thumbnail_file(png: bytes, name: str) -> discord.File:
    """A small PNG of a stored image, for an embed thumbnail (`attachment://name`)."""
    with Image.open(io.BytesIO(png)) as image:
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG")
    return discord.File(io.BytesIO(out.getvalue()), filename=name)


def history_embeds(jobs: Sequence[Job], page: int, thumbs: dict[str, str]) -> list[discord.Embed]:
    """One embed per job (newest first), each with its result's thumbnail when it has one."""
    embeds = []
    for job in jobs:
        icon = STATUS_ICONS.get(job.status, "•")
        embed = discord.Embed(
            title=f"{icon} {job.id}",
            description=clip(job.raw_prompt or job.prompt, PROMPT_PREVIEW) or "*(no prompt)*",
            colour=discord.Colour.dark_grey() if job.hidden else discord.Colour.blurple(),
        )
        embed.add_field(name="User", value=f"<@{job.user_id}> ({clip(job.user_name, 40) or job.user_id})")
        status = job.status + (" · hidden" if job.hidden else "")
        if job.status == "blocked" and job.blocked_rule:
            status += f" · rule {clip(job.blocked_rule, 60)}"
        embed.add_field(name="Status", value=status)
        embed.add_field(name="Time", value=stamp(job.created_at))
        if job.id in thumbs:
            embed.set_thumbnail(url=f"attachment://{thumbs[job.id]}")
        embeds.append(embed)
    if embeds:
        embeds[-1].set_footer(text=f"Page {page + 1} · newest first · pick a job below to open it")
    return embeds


def lineage_text(lineage: Lineage) -> str:
    """Ancestors (root first), the job, and every job derived from it as an indented tree."""
    lines = [f"{'  ' * depth}↳ {job_line(job)}" for depth, job in enumerate(lineage.ancestors)]
    depth = len(lineage.ancestors)
    lines.append(f"{'  ' * depth}➤ **this job** {job_line(lineage.job)}")
    children: dict[str | None, list[Job]] = {}
    for job in lineage.descendants:
        children.setdefault(job.parent_id, []).append(job)

    def walk(parent_id: str, level: int) -> None:
        for child in children.get(parent_id, []):
            lines.append(f"{'  ' * level}↳ {job_line(child)}")
            walk(child.id, level + 1)

    walk(lineage.job.id, depth + 1)
    text = "\n".join(lines)
    return text if len(text) <= 3000 else text[:2990] + "\n…"


def job_embed(
    job: Job, lineage: Lineage, image_names: Sequence[str], messages: Messages | None = None
) -> discord.Embed:
    """A job's full record for moderators: who, what, the outcome, where it is shown (`messages`
    from `Store.job_messages`), lineage."""
    embed = discord.Embed(
        title=f"Job {job.id}",
        colour=discord.Colour.dark_grey() if job.hidden else discord.Colour.blurple(),
        description=f"**Prompt**\n{clip(job.raw_prompt or job.prompt, 900) or '*(none)*'}\n\n"
        f"**Lineage**\n{lineage_text(lineage)}",
    )
    embed.add_field(name="User", value=f"<@{job.user_id}> ({clip(job.user_name, 40) or job.user_id})")
    embed.add_field(name="Kind", value=job.kind)
    embed.add_field(name="Status", value=job.status)
    embed.add_field(name="Created", value=stamp(job.created_at))
    if job.finished_at:
        embed.add_field(name="Finished", value=stamp(job.finished_at))
    size = f"{job.width}x{job.height}" if job.width and job.height else "—"
    embed.add_field(name="Model / size / seed", value=f"{job.model or '—'} · {size} · {job.seed}")
    if job.error:
        embed.add_field(name="Error", value=clip(job.error, 500), inline=False)
    if job.blocked_rule:
        embed.add_field(name="Blocked by rule", value=clip(job.blocked_rule, 500), inline=False)
    if job.hidden:
        embed.add_field(
            name="Hidden",
            value=f"by <@{job.hidden_by}>: {clip(job.hidden_reason, 300) or 'no reason given'}",
            inline=False,
        )
    links = message_links(job, messages)
    embed.add_field(name="Messages", value="\n".join(links[:5]) or "none", inline=False)
    if image_names:
        embed.set_image(url=f"attachment://{image_names[0]}")
    return embed


def bans_embed(bans: Sequence[Ban]) -> discord.Embed:
    embed = discord.Embed(title="Active bans", colour=discord.Colour.red())
    if not bans:
        embed.description = "Nobody is banned."
        return embed
    lines = [
        f"<@{ban.user_id}> {format_until(ban.expires_at)} — {clip(ban.reason, 80) or 'no reason'}"
        + (
            f" (by <@{ban.moderator_id}>)"
            if ban.guild_id is not None
            else f" ({GLOBAL_MARK} every server, by the bot's operator)"
        )
        for ban in bans
    ]
    embed.description = clip("\n".join(lines), 4000)
    return embed


GLOBAL_MARK = "🌐"  # a ban or rule the operator set for every server; `/mod` can't change it


def words_embed(rules: Sequence[BannedWord]) -> discord.Embed:
    embed = discord.Embed(title="Banned words", colour=discord.Colour.orange())

    def shown(rule: BannedWord) -> str:
        return f"`{rule_text(rule)}`" + (f" {GLOBAL_MARK}" if rule.guild_id is None else "")

    words = [shown(rule) for rule in rules if not rule.is_regex]
    expressions = [shown(rule) for rule in rules if rule.is_regex]
    if not rules:
        embed.description = "No banned words or expressions."
    if any(rule.guild_id is None for rule in rules):
        embed.set_footer(text=f"{GLOBAL_MARK} set by the bot's operator for every server")
    if words:
        embed.add_field(name=f"Words ({len(words)})", value=clip(", ".join(words), 1024), inline=False)
    if expressions:
        embed.add_field(
            name=f"Expressions ({len(expressions)})", value=clip("\n".join(expressions), 1024), inline=False
        )
    return embed


def audit_embed(entries: Sequence[AuditEntry]) -> discord.Embed:
    embed = discord.Embed(title="Audit log", colour=discord.Colour.dark_teal())
    lines = []
    for entry in entries:
        target = []
        if entry.target_user_id:
            target.append(f"<@{entry.target_user_id}>")
        if entry.target_job_id:
            target.append(f"`{entry.target_job_id[:8]}`")
        reason = f" — {clip(entry.reason, 60)}" if entry.reason else ""
        lines.append(
            f"{stamp(entry.created_at, 'R')} <@{entry.moderator_id}> **{entry.action}** "
            f"{' '.join(target)}{reason}"
        )
    embed.description = clip("\n".join(lines), 4000) if lines else "Nothing yet."
    return embed


def report_embed(
    report: Report, job: Job | None, position: int, total: int, messages: Messages | None = None
) -> discord.Embed:
    embed = discord.Embed(
        title=f"Report {position + 1} of {total}",
        colour=discord.Colour.gold(),
        description=f"**Reason**\n{clip(report.reason, 1000) or '*(none)*'}",
    )
    embed.add_field(name="Reported by", value=f"<@{report.reporter_id}>")
    embed.add_field(name="When", value=stamp(report.created_at))
    if job is not None:
        embed.add_field(name="Job", value=job_line(job), inline=False)
        embed.add_field(name="Prompt", value=clip(job.raw_prompt or job.prompt, 1000) or "—", inline=False)
        links = message_links(job, messages)
        if links:
            embed.add_field(name="Message", value=links[0], inline=False)
    else:
        embed.add_field(name="Job", value=f"`{report.job_id}` (no longer stored)", inline=False)
    embed.set_footer(text=f"report id {report.id}")
    return embed


# ---------------------------------------------------------------------------------------------
# Modals
# ---------------------------------------------------------------------------------------------
