"""The moderators' screens: embeds for jobs, bans, words and reports, the history paginator, the
job and report action buttons, and the modals that ask for a reason.

Everything here is shown ephemerally to one moderator and lives as long as a normal view
(15 minutes): moderators open a fresh one with a command, so nothing has to survive restarts.
The actions themselves (hide, ban, resolve) live in the desk (`DeskActions`, desk.py), which
audits them; the views only collect input and call it. `send_job_details` (the job's screen with
its buttons) is here rather than on the desk, so that the desk need not import its screens.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from typing import Any

import discord

from bot.discord import render
from bot.discord.moderation.desk import DeskActions
from bot.discord.moderation.embeds import VIEW_TIMEOUT_S, history_embeds, job_embed, report_embed
from bot.discord.moderation.modals import BanModal, ReasonModal
from bot.discord.replies import answer_internal_error, clip
from storage.models import Job, Report
from storage.queries import HistoryQuery

log = logging.getLogger(__name__)


# The `callback = ...` assignments below are discord.py's documented way to wire a button built
# at run time; mypy sees them as assigning to a method.


class ModeratorView(discord.ui.View):
    """A view only its moderator may use, re-checked against the moderator rule on every click
    (a role can be taken away while the view is open)."""

    def __init__(self, cog: DeskActions, moderator_id: int) -> None:
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
        await answer_internal_error(interaction, f"moderator control {label!r}{on_job}", error)


class JobActionsView(ModeratorView):
    """Hide / Unhide, Ban author, and a menu to open a related job from the lineage."""

    def __init__(self, cog: DeskActions, moderator_id: int, job: Job, related: Sequence[Job] = ()) -> None:
        super().__init__(cog, moderator_id)
        self.job_id = job.id
        self.author_id = job.user_id
        self.author_name = job.user_name or str(job.user_id)
        toggle: discord.ui.Button[JobActionsView] = discord.ui.Button(
            label="Unhide" if job.hidden else "Hide",
            style=discord.ButtonStyle.secondary if job.hidden else discord.ButtonStyle.danger,
            custom_id=f"modjob:{'unhide' if job.hidden else 'hide'}",
        )
        toggle.callback = self._unhide if job.hidden else self._hide  # type: ignore[method-assign]
        self.add_item(toggle)
        ban: discord.ui.Button[JobActionsView] = discord.ui.Button(
            label="Ban author", style=discord.ButtonStyle.danger, custom_id="modjob:ban"
        )
        ban.callback = self._ban  # type: ignore[method-assign]
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
                await send_job_details(self.cog, interaction, select.values[0])

            select.callback = open_related  # type: ignore[method-assign]
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

    def __init__(self, cog: DeskActions, moderator_id: int, query: HistoryQuery) -> None:
        super().__init__(cog, moderator_id)
        self.query = query
        self.cursors: list[str | None] = [None]  # the `before` cursor of each page seen so far
        self.next_cursor: str | None = None
        self.jobs: list[Job] = []
        self.select: discord.ui.Select[HistoryView] = discord.ui.Select(
            placeholder="Open a job…",
            options=[discord.SelectOption(label="-")],
            custom_id="modhistory:open",
            row=1,
        )
        self.select.callback = self._open  # type: ignore[method-assign]
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
        await send_job_details(self.cog, interaction, self.select.values[0])


class ReportsView(ModeratorView):
    """Works through open reports one at a time: resolve, hide the job, or ban its author."""

    def __init__(self, cog: DeskActions, moderator_id: int, guild_id: int) -> None:
        super().__init__(cog, moderator_id)
        self.guild_id = guild_id
        self.reports: list[Report] = []
        self.position = 0
        self.job: Job | None = None  # the current report's job, as `load` last read it

    @property
    def current(self) -> Report | None:
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


async def send_job_details(desk: DeskActions, interaction: discord.Interaction, job_id: str) -> None:
    """The job's embed, its pictures and its action buttons, privately to the moderator."""
    job = await desk.job_in_guild(interaction, job_id)
    if job is None:
        return
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    lineage = await desk.store.lineage(job.id)
    images = ([job.grid] if job.grid is not None else []) + job.cells
    # One message carries them all: share the upload limit (large PNGs become JPEGs).
    limit = render.filesize_limit(interaction.guild)
    budget = limit // max(len(images), 1) - 64 * 1024
    files = []
    for image in images:
        try:
            data = await asyncio.to_thread(desk.store.files.read_bytes, image.path)
        except OSError as exc:
            log.warning("job %s: image %s unreadable: %s", job.id, image.path, exc)
            continue
        stem = "grid" if image.index < 0 else f"image_{image.index + 1}"
        name, data = await asyncio.to_thread(render.fit_upload, data, stem, budget)
        files.append(discord.File(io.BytesIO(data), filename=name))
    messages = await desk.store.job_messages(job.id)
    embed = job_embed(job, lineage, [file.filename for file in files], messages)
    related = [*lineage.ancestors, *lineage.descendants]
    view = JobActionsView(desk, interaction.user.id, job, related)
    await interaction.followup.send(embed=embed, files=files[:10], view=view, ephemeral=True)
