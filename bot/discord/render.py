"""What a job looks like in Discord: the message text, the picture, the buttons.

One obvious place for it, so the `/imagine` response, a button's result, `/show`, a recovered
job's reply and a moderator's "hidden" notice all look the same. Nothing here sends anything.

The text names the prompt (canonical form), the user, the job id and the model, like
Midjourney's `**prompt** - @user (fast)` line.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from typing import Any

import discord
from PIL import Image

from bot.core.dispatcher import JobUpdate
from bot.core.prompt_tools import options, ranking
from bot.core.region import REGION_SOURCES
from bot.core.services import Services
from bot.discord.buttons import GRID_ROWS, SINGLE_ROWS, ButtonSpec, job_view
from bot.discord.replies import clip, message_text
from storage.models import ANSWER_KINDS, Job, JobStatus

DEFAULT_FILESIZE_LIMIT = 25 * 1024 * 1024  # Discord's upload limit outside boosted guilds
PROMPT_CHARS = 1500  # Discord allows 2000 characters; leave room for the other lines
RANKED_WORDS = 20  # the most words a /shorten answer lists with their scores
ANSWER_PROMPT_CHARS = 250  # each offered prompt, so five of them and the ranking fit one message

KIND_LABELS = {
    "imagine": "Imagine",
    "reroll": "Re-roll",
    "upscale": "Image",
    "upscale_subtle": "Upscale (Subtle)",
    "upscale_creative": "Upscale (Creative)",
    "vary": "Variations",
    "vary_subtle": "Vary (Subtle)",
    "vary_strong": "Vary (Strong)",
    "zoom": "Zoom Out",
    "pan": "Pan",
    "square": "Make Square",
    "blend": "Blend",
    "shorten": "Shorten",
    "describe": "Describe",
}
HIDDEN_NOTICE = "🚫 This job was hidden by a moderator."
DELETED_NOTICE = "🗑️ This job was deleted by its author."


@dataclass
class RenderedMessage:
    """A message ready to send or edit; `files()` gives fresh `discord.File`s on each call."""

    content: str
    attachments: list[tuple[str, bytes]] = field(default_factory=list)
    view: discord.ui.View | None = None
    key: str = ""  # identifies what is shown, to skip edits that would change nothing
    spoiler: bool = False  # the channel spoilers results (a moderator's channel setting)

    def files(self) -> list[discord.File]:
        return [
            discord.File(io.BytesIO(data), filename=name, spoiler=self.spoiler)
            for name, data in self.attachments
        ]

    def send_kwargs(self) -> dict[str, Any]:
        """The arguments of a `send` of this message (fresh files; mentions never ping)."""
        return self._kwargs("files")

    def edit_kwargs(self) -> dict[str, Any]:
        """The arguments of an `edit` to this message: its files replace the old attachments."""
        return self._kwargs("attachments")

    def _kwargs(self, files_as: str) -> dict[str, Any]:
        return {
            "content": message_text(self.content),
            files_as: self.files(),
            "view": self.view,
            "allowed_mentions": discord.AllowedMentions.none(),
        }


def filesize_limit(guild: discord.Guild | None) -> int:
    """The most one upload may weigh in `guild` (Discord's default outside one)."""
    return guild.filesize_limit if guild is not None else DEFAULT_FILESIZE_LIMIT


def header(job: Job) -> str:
    """`**prompt** - <@user>` and a second line with the kind, the job id and the model."""
    prompt = clip(job.prompt or job.raw_prompt, PROMPT_CHARS) or "(no prompt)"
    kind = KIND_LABELS.get(job.kind, job.kind)
    if job.kind == "upscale" and job.parent_index is not None:
        kind = f"Image #{job.parent_index + 1}"
    elif job.kind == "zoom" and job.params.get("zoom"):
        kind = f"Zoom Out {float(job.params['zoom']):g}x"
    elif job.kind == "pan" and job.params.get("direction"):
        kind = f"Pan {job.params['direction']}"
    model = f" · model `{job.model}`" if job.model else ""
    return f"**{_escape(prompt)}** - <@{job.user_id}>\n{kind} · job `{job.id}`{model}"


def status_message(job: Job, update: JobUpdate, preview_png: bytes | None = None) -> RenderedMessage:
    """The message while a job waits or runs: position or percentage, a preview, Cancel.

    The preview comes already encoded (`encode_preview`, off the event loop): this function
    runs on the loop, and PNG encoding is CPU work that would stall every other interaction.
    """
    if update.status == JobStatus.QUEUED:
        position = update.position if update.position is not None else job.queue_position
        where = f" (position {position})" if position else ""
        line = f"⏳ Waiting to start{where}"
    else:
        percent = int(100 * update.step / update.total) if update.total else 0
        line = f"🎨 Running: {percent}%"
    attachments = []
    if preview_png is not None:
        attachments.append(("preview.png", preview_png))
    view = job_view([[ButtonSpec("cancel", job.id)]])
    return RenderedMessage(f"{header(job)}\n{line}", attachments, view, key=line)


async def encode_preview(update: JobUpdate) -> bytes | None:
    """The update's preview as PNG bytes (None: it has none), encoded in a worker thread."""
    if update.preview is None:
        return None
    preview = update.preview
    return await asyncio.to_thread(lambda: _png(preview.to_pil()))


def waiting_message(job: Job, position: int | None) -> RenderedMessage:
    """The first message of a job, sent as soon as it is queued."""
    return status_message(job, JobUpdate(job.id, JobStatus.QUEUED.value, position=position))


def notice_message(job: Job) -> RenderedMessage | None:
    """The notice for a hidden or deleted job (None: neither)."""
    if job.hidden:
        return RenderedMessage(HIDDEN_NOTICE, key="hidden")
    if job.deleted:
        return RenderedMessage(DELETED_NOTICE, key="deleted")
    return None


async def job_message(
    job: Job, services: Services, *, filesize_limit: int = DEFAULT_FILESIZE_LIMIT
) -> RenderedMessage:
    """The message for a job in its current state; a finished job gets its picture and buttons."""
    notice = notice_message(job)
    if notice is not None:
        return notice
    head = header(job)
    if job.status == JobStatus.DONE and job.kind in ANSWER_KINDS:
        return await answer_message(job, services, filesize_limit=filesize_limit)
    if job.status == JobStatus.DONE:
        picture = job.grid if job.grid is not None else (job.cells[0] if job.cells else None)
        attachments = []
        if picture is not None:
            data = await asyncio.to_thread(services.store.files.read_bytes, picture.path)
            name = f"{_slug(job)}_{job.id[:8]}"
            attachments.append(await asyncio.to_thread(fit_upload, data, name, filesize_limit))
        spoiler = await in_spoiler_channel(services, job)
        view = result_view(job, region=services.settings.web_enabled)
        return RenderedMessage(head, attachments, view, key="done", spoiler=spoiler)
    if job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
        return status_message(job, JobUpdate(job.id, job.status, position=job.queue_position))
    if job.status == JobStatus.CANCELLED:
        return RenderedMessage(f"{head}\n❌ Cancelled.", key="cancelled")
    reason = job.error or "unknown error"
    if job.status == JobStatus.BLOCKED:
        return RenderedMessage(f"{head}\n⛔ Blocked: {reason}", key="blocked")
    return RenderedMessage(f"{head}\n⚠️ Failed: {reason}", key="failed")


async def answer_message(
    job: Job, services: Services, *, filesize_limit: int = DEFAULT_FILESIZE_LIMIT
) -> RenderedMessage:
    """A /shorten or /describe answer: the ranking or the picture, the numbered prompts, and one
    button per prompt that imagines it."""
    asked = f"**{_escape(clip(job.prompt, ANSWER_PROMPT_CHARS))}** - " if job.kind == "shorten" else ""
    lines = [f"{asked}<@{job.user_id}>\n{KIND_LABELS[job.kind]} · job `{job.id}`"]
    words = ranking(job)
    if words:
        shown = " · ".join(f"**{_escape(pair.word)}** {pair.score:.4f}" for pair in words[:RANKED_WORDS])
        lines.append(f"Words by how far dropping each moves the text encoder's embedding:\n{shown}")
    offered = options(job)
    if offered:
        title = "Shorter prompts:" if job.kind == "shorten" else "Prompts for this image:"
        numbered = (
            f"**{n}.** {_escape(clip(text, ANSWER_PROMPT_CHARS))}" for n, text in enumerate(offered, 1)
        )
        lines.append("\n".join([title, *numbered]))
    elif job.kind == "shorten":
        lines.append("This prompt is as short as it gets: every shorter version would lose its only word.")
    attachments = []
    image = (job.params or {}).get("image")
    if image:
        data = await asyncio.to_thread(services.store.files.read_bytes, image)
        attachments.append(
            await asyncio.to_thread(fit_upload, data, f"describe_{job.id[:8]}", filesize_limit)
        )
    view = (
        job_view([[ButtonSpec("prompt", job.id, n) for n in range(1, len(offered) + 1)]]) if offered else None
    )
    return RenderedMessage("\n".join(lines), attachments, view, key="done")


async def in_spoiler_channel(services: Services, job: Job) -> bool:
    """True when moderators asked for results in the job's channel to be spoilered."""
    if job.guild_id is None or job.channel_id is None:
        return False
    settings = await services.store.guild_settings(job.guild_id)
    return job.channel_id in {int(c) for c in settings.spoiler_channel_ids or []}


def result_view(job: Job, *, region: bool = False) -> discord.ui.View | None:
    """Grid buttons for a job with a grid, single-image buttons otherwise; Make Square only
    when the image is not square already; Vary (Region) on an upscale when `region` (Imagine
    Web is set up)."""
    if job.grid is not None:
        rows = [[_spec(name, job.id) for name in row] for row in GRID_ROWS]
        return job_view(rows)
    if not job.cells:
        return None
    cell = job.cells[0]
    rows = []
    for row in SINGLE_ROWS:
        names = [name for name in row if not (name == "square" and cell.width == cell.height)]
        rows.append([_spec(name, job.id) for name in names])
    if region and job.kind in REGION_SOURCES:
        rows[0].append(_spec("region", job.id))
    return job_view(rows)


def fit_upload(png: bytes, name: str, limit: int) -> tuple[str, bytes]:
    """The PNG when it fits Discord's upload limit, else a high-quality JPEG that does.

    The PNG stays in the store untouched; only what Discord receives is re-encoded.
    """
    if len(png) <= limit:
        return f"{name}.png", png
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.convert("RGB")
    for quality in (95, 90, 85, 75, 60):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= limit:
            return f"{name}.jpg", buffer.getvalue()
    while True:  # still too large (a huge limit mismatch): halve the size until it fits
        image = image.resize((max(1, image.width // 2), max(1, image.height // 2)))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        if buffer.tell() <= limit or image.width == 1:
            return f"{name}.jpg", buffer.getvalue()


def _spec(name: str, job_id: str) -> ButtonSpec:
    action, _, index = name.partition(":")
    return ButtonSpec(action, job_id, int(index) if index else None)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _slug(job: Job) -> str:
    words = "".join(c if c.isalnum() else " " for c in (job.prompt or "image")).split()
    return "_".join(words[:6])[:60] or "image"


def _escape(text: str) -> str:
    return discord.utils.escape_markdown(text)
