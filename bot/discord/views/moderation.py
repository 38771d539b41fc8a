"""The moderators' screens: embeds for jobs, bans, words and reports, the history paginator, the
job and report action buttons, and the modals that ask for a reason.

Everything here is shown ephemerally to one moderator and lives as long as a normal view
(15 minutes): moderators open a fresh one with a command, so nothing has to survive restarts.
The actions themselves (hide, ban, resolve) live in the cog, which audits them; the views only
collect input and call it.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import discord

from bot.core.moderation import format_until, rule_text
from bot.discord.render import clip

if TYPE_CHECKING:
    from bot.discord.cogs.moderation import ModerationCog

log = logging.getLogger(__name__)

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


def stamp(when: datetime | None, style: str = "f") -> str:
    """A Discord timestamp, shown in each reader's own time zone."""
    return "—" if when is None else discord.utils.format_dt(when, style)


def job_line(job: Any) -> str:
    """One line about a job for lists and lineage trees."""
    icon = STATUS_ICONS.get(job.status, "•")
    hidden = " 🙈 hidden" if job.hidden else ""
    index = f" #{job.parent_index + 1}" if job.parent_index is not None else ""
    prompt = clip(job.prompt or job.raw_prompt, 60)
    return f"{icon} `{job.id[:8]}` **{job.kind}**{index} by <@{job.user_id}>{hidden} — {prompt}"


Messages = Sequence[tuple[int | None, int]]  # (channel id, message id), as Store.job_messages gives


def message_links(job: Any, messages: Messages | None = None) -> list[str]:
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
    from PIL import Image  # Pillow is a dependency of the bot anyway; imported where used

    with Image.open(io.BytesIO(png)) as image:
        image.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG")
    return discord.File(io.BytesIO(out.getvalue()), filename=name)


def history_embeds(jobs: Sequence[Any], page: int, thumbs: dict[str, str]) -> list[discord.Embed]:
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


def lineage_text(lineage: Any) -> str:
    """Ancestors (root first), the job, and every job derived from it as an indented tree."""
    lines = [f"{'  ' * depth}↳ {job_line(job)}" for depth, job in enumerate(lineage.ancestors)]
    depth = len(lineage.ancestors)
    lines.append(f"{'  ' * depth}➤ **this job** {job_line(lineage.job)}")
    children: dict[str | None, list[Any]] = {}
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
    job: Any, lineage: Any, image_names: Sequence[str], messages: Messages | None = None
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


def bans_embed(bans: Sequence[Any]) -> discord.Embed:
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


def words_embed(rules: Sequence[Any]) -> discord.Embed:
    embed = discord.Embed(title="Banned words", colour=discord.Colour.orange())

    def shown(rule: Any) -> str:
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


def audit_embed(entries: Sequence[Any]) -> discord.Embed:
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
    report: Any, job: Any, position: int, total: int, messages: Messages | None = None
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

ReasonCallback = Callable[[discord.Interaction, str], Awaitable[None]]


class ReasonModal(discord.ui.Modal):
    """Asks for one piece of text (a hide reason, a report reason) and hands it on."""

    def __init__(
        self,
        title: str,
        label: str,
        on_submit: ReasonCallback,
        *,
        required: bool = False,
        default: str = "",
        placeholder: str = "",
    ) -> None:
        super().__init__(title=title, timeout=VIEW_TIMEOUT_S)
        self._on_submit = on_submit
        self.reason: discord.ui.TextInput[ReasonModal] = discord.ui.TextInput(
            label=label,
            custom_id="reason",
            style=discord.TextStyle.paragraph,
            required=required,
            max_length=500,
            default=default or None,
            placeholder=placeholder or None,
        )
        self.add_item(self.reason)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._on_submit(interaction, self.reason.value.strip())

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        from bot.discord.app import answer_internal_error

        await answer_internal_error(interaction, f"form {self.title!r}", error)


BanCallback = Callable[[discord.Interaction, str, str], Awaitable[None]]


class BanModal(discord.ui.Modal):
    """Reason and duration for a ban started from a button (job details, a report)."""

    def __init__(self, user_label: str, on_submit: BanCallback, *, default_reason: str = "") -> None:
        super().__init__(title=clip(f"Ban {user_label}", 45), timeout=VIEW_TIMEOUT_S)
        self._on_submit = on_submit
        self.reason: discord.ui.TextInput[BanModal] = discord.ui.TextInput(
            label="Reason (the member sees it)",
            custom_id="reason",
            style=discord.TextStyle.paragraph,
            required=False,
            max_length=500,
            default=clip(default_reason, 500) or None,
        )
        self.duration: discord.ui.TextInput[BanModal] = discord.ui.TextInput(
            label="Duration (30m, 12h, 7d, 2w; empty: permanent)",
            custom_id="duration",
            required=False,
            max_length=20,
        )
        self.add_item(self.reason)
        self.add_item(self.duration)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await self._on_submit(interaction, self.reason.value.strip(), self.duration.value.strip())

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:
        from bot.discord.app import answer_internal_error

        await answer_internal_error(interaction, f"form {self.title!r}", error)


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------


class ModeratorView(discord.ui.View):
    """A view only its moderator may use, re-checked against the moderator rule on every click
    (a role can be taken away while the view is open)."""

    def __init__(self, cog: ModerationCog, moderator_id: int) -> None:
        super().__init__(timeout=VIEW_TIMEOUT_S)
        self.cog = cog
        self.moderator_id = moderator_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.moderator_id:
            await interaction.response.send_message(
                "These controls belong to another moderator.", ephemeral=True
            )
            return False
        return await self.cog.guard(interaction) is not None

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any], /
    ) -> None:
        job_id = getattr(self, "job_id", None)
        on_job = f" on job {job_id}" if job_id else ""
        label = getattr(item, "label", None) or type(item).__name__
        from bot.discord.app import answer_internal_error

        await answer_internal_error(interaction, f"moderator control {label!r}{on_job}", error)


class JobActionsView(ModeratorView):
    """Hide / Unhide, Ban author, and a menu to open a related job from the lineage."""

    def __init__(self, cog: ModerationCog, moderator_id: int, job: Any, related: Sequence[Any] = ()) -> None:
        super().__init__(cog, moderator_id)
        self.job_id = job.id
        self.author_id = job.user_id
        self.author_name = job.user_name or str(job.user_id)
        toggle = discord.ui.Button(
            label="Unhide" if job.hidden else "Hide",
            style=discord.ButtonStyle.secondary if job.hidden else discord.ButtonStyle.danger,
            custom_id=f"modjob:{'unhide' if job.hidden else 'hide'}",
        )
        toggle.callback = self._unhide if job.hidden else self._hide
        self.add_item(toggle)
        ban = discord.ui.Button(label="Ban author", style=discord.ButtonStyle.danger, custom_id="modjob:ban")
        ban.callback = self._ban
        self.add_item(ban)
        options = [
            discord.SelectOption(
                label=clip(f"{other.kind} {other.id[:8]}", 100),
                value=other.id,
                description=clip(other.prompt or other.raw_prompt, 100) or None,
            )
            for other in related[:25]
        ]
        if options:
            select: discord.ui.Select[JobActionsView] = discord.ui.Select(
                placeholder="Open a related job…", options=options, custom_id="modjob:open"
            )

            async def open_related(interaction: discord.Interaction) -> None:
                await self.cog.send_job_details(interaction, select.values[0])

            select.callback = open_related
            self.add_item(select)

    async def _hide(self, interaction: discord.Interaction) -> None:
        async def submit(modal_interaction: discord.Interaction, reason: str) -> None:
            await self.cog.hide_job(modal_interaction, self.job_id, reason)

        await interaction.response.send_modal(
            ReasonModal("Hide this job", "Reason (for the audit log)", submit)
        )

    async def _unhide(self, interaction: discord.Interaction) -> None:
        await self.cog.unhide_job(interaction, self.job_id)

    async def _ban(self, interaction: discord.Interaction) -> None:
        async def submit(modal_interaction: discord.Interaction, reason: str, duration: str) -> None:
            await self.cog.ban_user(modal_interaction, self.author_id, reason, duration)

        await interaction.response.send_modal(BanModal(self.author_name, submit))


class HistoryView(ModeratorView):
    """Pages through `/mod history` newest first with keyset cursors; the select opens a job."""

    def __init__(self, cog: ModerationCog, moderator_id: int, query: Any) -> None:
        super().__init__(cog, moderator_id)
        self.query = query
        self.cursors: list[Any] = [None]  # the `before` cursor of each page seen so far
        self.next_cursor: Any = None
        self.jobs: list[Any] = []
        self.select: discord.ui.Select[HistoryView] = discord.ui.Select(
            placeholder="Open a job…",
            options=[discord.SelectOption(label="-")],
            custom_id="modhistory:open",
            row=1,
        )
        self.select.callback = self._open
        self.add_item(self.select)

    @property
    def page(self) -> int:
        return len(self.cursors) - 1

    async def load(self) -> tuple[list[discord.Embed], list[discord.File]]:
        """Fetch the current page and return what to show; updates the buttons and the menu."""
        result = await self.cog.history_page(self.query, self.cursors[-1])
        self.jobs, self.next_cursor = list(result.jobs), result.next_cursor
        self.newer.disabled = self.page == 0
        self.older.disabled = self.next_cursor is None
        self.select.options = [
            discord.SelectOption(
                label=clip(f"{job.status} · {job.id[:8]} · {job.user_name}", 100),
                value=job.id,
                description=clip(job.raw_prompt or job.prompt, 100) or None,
            )
            for job in self.jobs
        ] or [discord.SelectOption(label="-")]
        self.select.disabled = not self.jobs
        files = await self.cog.thumbnails(self.jobs)
        thumbs = {name.removesuffix(".png"): name for name in (file.filename for file in files)}
        return history_embeds(self.jobs, self.page, thumbs), files

    async def _show(self, interaction: discord.Interaction) -> None:
        embeds, files = await self.load()
        await interaction.response.edit_message(content=None, embeds=embeds, attachments=files, view=self)

    @discord.ui.button(
        label="◀ Newer", style=discord.ButtonStyle.secondary, custom_id="modhistory:newer", row=0
    )
    async def newer(self, interaction: discord.Interaction, button: discord.ui.Button[HistoryView]) -> None:
        if len(self.cursors) > 1:
            self.cursors.pop()
        await self._show(interaction)

    @discord.ui.button(
        label="Older ▶", style=discord.ButtonStyle.secondary, custom_id="modhistory:older", row=0
    )
    async def older(self, interaction: discord.Interaction, button: discord.ui.Button[HistoryView]) -> None:
        if self.next_cursor is not None:
            self.cursors.append(self.next_cursor)
        await self._show(interaction)

    async def _open(self, interaction: discord.Interaction) -> None:
        await self.cog.send_job_details(interaction, self.select.values[0])


class ReportsView(ModeratorView):
    """Works through open reports one at a time: resolve, hide the job, or ban its author."""

    def __init__(self, cog: ModerationCog, moderator_id: int, guild_id: int) -> None:
        super().__init__(cog, moderator_id)
        self.guild_id = guild_id
        self.reports: list[Any] = []
        self.position = 0
        self.job: Any | None = None  # the current report's job, as `load` last read it

    @property
    def current(self) -> Any | None:
        return self.reports[self.position] if self.reports else None

    async def load(self) -> tuple[str | None, list[discord.Embed], list[discord.File]]:
        self.reports = await self.cog.open_reports(self.guild_id)
        self.position = min(self.position, max(len(self.reports) - 1, 0))
        report = self.current
        for item in self.children:
            if isinstance(item, discord.ui.Button):
                item.disabled = report is None
        self.previous.disabled = self.position == 0
        self.next.disabled = self.position >= len(self.reports) - 1
        self.job = None
        if report is None:
            return "No open reports.", [], []
        job = self.job = await self.cog.store.get_job(report.job_id)
        self.hide.disabled = job is None or job.hidden
        self.ban.disabled = job is None
        files = await self.cog.thumbnails([job]) if job is not None else []
        messages = await self.cog.store.job_messages(job.id) if job is not None else None
        embed = report_embed(report, job, self.position, len(self.reports), messages)
        if files:
            embed.set_thumbnail(url=f"attachment://{files[0].filename}")
        return None, [embed], files

    async def refresh(self, interaction: discord.Interaction) -> None:
        """Redraw after an action; the interaction may already be answered (a modal's)."""
        content, embeds, files = await self.load()
        if interaction.response.is_done():
            await interaction.edit_original_response(
                content=content, embeds=embeds, attachments=files, view=self
            )
        else:
            await interaction.response.edit_message(
                content=content, embeds=embeds, attachments=files, view=self
            )

    @discord.ui.button(
        label="Resolve", style=discord.ButtonStyle.success, custom_id="modreports:resolve", row=0
    )
    async def resolve(self, interaction: discord.Interaction, button: discord.ui.Button[ReportsView]) -> None:
        report = self.current
        if report is not None:
            await self.cog.close_report(interaction, report, "resolved")
        await self.refresh(interaction)

    @discord.ui.button(label="Hide job", style=discord.ButtonStyle.danger, custom_id="modreports:hide", row=0)
    async def hide(self, interaction: discord.Interaction, button: discord.ui.Button[ReportsView]) -> None:
        report = self.current
        if report is not None:
            reason = f"reported: {report.reason}".strip()
            if await self.cog.hide_job(interaction, report.job_id, reason, answer=False):
                await self.cog.close_report(interaction, report, "actioned")
        await self.refresh(interaction)

    @discord.ui.button(
        label="Ban author", style=discord.ButtonStyle.danger, custom_id="modreports:ban", row=0
    )
    async def ban(self, interaction: discord.Interaction, button: discord.ui.Button[ReportsView]) -> None:
        report, job = self.current, self.job
        if report is None or job is None:
            await self.refresh(interaction)
            return

        async def submit(modal_interaction: discord.Interaction, reason: str, duration: str) -> None:
            await modal_interaction.response.defer()
            if await self.cog.ban_user(modal_interaction, job.user_id, reason, duration, answer=False):
                await self.cog.close_report(modal_interaction, report, "actioned")
            await self.refresh(modal_interaction)

        await interaction.response.send_modal(
            BanModal(
                job.user_name or str(job.user_id), submit, default_reason=f"Reported image: {report.reason}"
            )
        )

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary, custom_id="modreports:previous", row=1)
    async def previous(
        self, interaction: discord.Interaction, button: discord.ui.Button[ReportsView]
    ) -> None:
        self.position = max(self.position - 1, 0)
        await self.refresh(interaction)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary, custom_id="modreports:next", row=1)
    async def next(self, interaction: discord.Interaction, button: discord.ui.Button[ReportsView]) -> None:
        self.position += 1
        await self.refresh(interaction)


__all__ = [
    "PAGE_SIZE",
    "BanModal",
    "HistoryView",
    "JobActionsView",
    "ModeratorView",
    "ReasonModal",
    "ReportsView",
    "audit_embed",
    "bans_embed",
    "history_embeds",
    "job_embed",
    "lineage_text",
    "message_links",
    "report_embed",
    "thumbnail_file",
    "words_embed",
]
