"""Keeps each job's Discord message in step with the job: queue position, progress, result.

One worker task per bot does every edit. The dispatcher's listener only records the newest
update of a job and wakes the worker, so a burst of progress events costs one edit, edits of one
message never race each other, and a slow Discord never slows the engine.

Where a message lives decides how it is edited:

- the `/imagine` response (and its follow-ups) through the interaction token, which Discord
  honours for 15 minutes; after that (a long queue) the result goes to a new channel message that
  replies to the original, and that reply becomes the job's message;
- a message the bot sent into the channel itself (button results) through the channel, forever;
- a job this process knows nothing about (recovered after a restart) gets its result as a reply
  to the message the store remembers.

Progress edits are throttled per message (`progress_interval`, Discord rate-limits edits); the
first status and the final result are never held back.

Every edit of a job's messages, the worker's and a moderator's hide, unhide or the author's
delete alike, holds that job's lock: a progress edit already under way when a job is hidden lands
before the notice, never after it, and once a job's messages show a notice the worker leaves them
alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import discord

from bot.core.dispatcher import JobUpdate
from bot.core.services import Services
from bot.discord import render
from bot.discord.job_message import JobMessage, TokenExpired, token_valid
from storage.models import Job

log = logging.getLogger(__name__)

WAKE_EVENT = "imagine_job_update"
"""The bot event that wakes the worker. `Client.wait_for` is the wake-up because it is the one
waiting primitive discord.py itself owns (and that test harnesses for discord.py recognise)."""

ORPHAN_LIMIT = 1000
RENDERED_LIMIT = 10_000
SUPPRESSED_LIMIT = 10_000
FINAL_ATTEMPTS = 3  # a result that could not be shown (a busy database, say) is tried this often


class JobMessenger:
    """The job-message registry plus the worker that edits them."""

    def __init__(self, bot: discord.Client, services: Services, *, progress_interval: float = 3.0) -> None:
        self.bot = bot
        self.services = services
        self.progress_interval = progress_interval
        self._messages: dict[str, list[JobMessage]] = {}  # a job can show in several (`/show`)
        self._pending: dict[str, JobUpdate] = {}  # newest unrendered update per job
        self._rendered: dict[str, str] = {}  # job id -> last status shown (tests and /info read it)
        # Updates of jobs with no message yet: the job can start (even finish) while its first
        # message is still being sent; `track` picks the update up from here.
        self._orphans: dict[str, JobUpdate] = {}
        # One lock per job with edits under way (and how many hold or wait for it).
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}
        # Jobs whose messages show a hidden/deleted notice: the worker no longer edits them.
        self._suppressed: dict[str, None] = {}
        self._final_failures: dict[str, int] = {}  # job id -> failed attempts to show its result
        self._worker: asyncio.Task[None] | None = None
        self._dirty = False  # an update arrived since the worker last looked
        self._busy = False  # an edit is under way
        self._closed = False

    # -- registration ---------------------------------------------------------------------------

    def track(
        self,
        job_id: str,
        channel_id: int,
        message_id: int,
        *,
        interaction: discord.Interaction | None = None,
        original: bool = False,
        job: Job | None = None,
    ) -> None:
        """Remember a message that shows `job_id` (it was just sent with the current status)."""
        shown = JobMessage(
            job_id, channel_id, message_id, interaction=interaction, original=original, job=job
        )
        shown.last_edit = _now()
        self._messages.setdefault(job_id, []).append(shown)
        orphan = self._orphans.pop(job_id, None)
        if orphan is not None and job_id not in self._pending:
            self._pending[job_id] = orphan
            self._dirty = True
            self.bot.dispatch(WAKE_EVENT)

    def mark_shown(self, job_id: str, status: str) -> None:
        """Record the status a job's message shows (a U1-U4 image is posted finished at once)."""
        self._rendered.pop(job_id, None)
        self._rendered[job_id] = status
        while len(self._rendered) > RENDERED_LIMIT:  # remember recent jobs only
            self._rendered.pop(next(iter(self._rendered)))

    def rendered_status(self, job_id: str) -> str | None:
        """The last status this bot put on the job's message (None: nothing rendered yet)."""
        return self._rendered.get(job_id)

    # -- the dispatcher side ----------------------------------------------------------------------

    async def on_update(self, update: JobUpdate) -> None:
        """The dispatcher listener: note the newest state and wake the worker. Never blocks."""
        if self._closed:
            return
        previous = self._pending.get(update.job_id)
        if previous is not None and previous.final and not update.final:
            return  # a late progress event must not hide a final one
        self._pending[update.job_id] = update
        self._dirty = True
        self.bot.dispatch(WAKE_EVENT)

    # -- the worker -------------------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="job-messenger")

    async def drain(self, timeout: float) -> bool:
        """Wait until every update received so far is shown (at shutdown); False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._pending or self._busy:
            if loop.time() >= deadline or self._worker is None or self._worker.done():
                return False
            await asyncio.sleep(0.05)
        return True

    async def close(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None

    async def _run(self) -> None:
        while True:
            self._dirty = False
            delay = await self._render_due()
            if self._dirty:
                continue  # something arrived while rendering: look again before sleeping
            with contextlib.suppress(TimeoutError):
                await self.bot.wait_for(WAKE_EVENT, timeout=delay)

    async def _render_due(self) -> float | None:
        """Render every update that may be shown now; return how long until the next one may."""
        soonest: float | None = None
        # Results first: a long queue's position changes must not hold a finished picture back.
        for job_id in sorted(self._pending, key=lambda job_id: not self._pending[job_id].final):
            update = self._pending.get(job_id)
            if update is None:
                continue  # dropped while an earlier edit was awaited (the job was hidden)
            tracked = self._messages.get(job_id, [])
            wait = 0.0
            if tracked and not update.final:  # positions and progress: throttled
                wait = max(m.last_edit for m in tracked) + self.progress_interval - _now()
            if wait > 0:
                soonest = wait if soonest is None else min(soonest, wait)
                continue
            if self._pending.get(job_id) is update:
                del self._pending[job_id]
            self._busy = True
            try:
                async with self._editing(job_id):
                    # Looked at again under the lock: a hide may have run while we waited.
                    if job_id not in self._suppressed:
                        await self._render(update, self._messages.get(job_id, []))
            except Exception:
                log.exception("could not show job %s in Discord", job_id)
                if update.final:
                    self._retry_final(update)
            else:
                if update.final:
                    self._final_failures.pop(job_id, None)
            finally:
                self._busy = False
        return soonest

    async def _render(self, update: JobUpdate, tracked: list[JobMessage]) -> None:
        store = self.services.store
        if not tracked and not update.final:
            self._orphan(update)  # progress of a job whose message is on its way (or not ours)
            return
        cached = next((one.job for one in tracked if one.job is not None), None)
        # A status line only needs what never changes (prompt, author, id, model): no read.
        job = cached if cached is not None and not update.final else await store.get_job(update.job_id)
        if job is None:
            return
        if update.final:
            # The job's first message may have been tracked while the row was read.
            tracked = self._messages.get(update.job_id, [])
            if not tracked and job.message_id is None:
                self._orphan(update)  # its first message is still on its way
                return
            if not tracked and self._rendered.get(job.id) == job.status:
                return  # already shown in its final state (a U1-U4 image is posted finished)
            if not tracked and render.notice_message(job) is not None:
                return  # hidden or deleted while it ran: its messages already say so
            guild = self.bot.get_guild(job.guild_id) if job.guild_id else None
            message = await render.job_message(
                job, self.services, filesize_limit=render.filesize_limit(guild)
            )
            await self._show_final(job, tracked, message)
            shown = {id(one) for one in tracked}
            later = [one for one in self._messages.get(update.job_id, []) if id(one) not in shown]
            if later:  # tracked while the result was being shown: show it there too
                self._messages[update.job_id] = later
                self._again(update)
            else:
                self._messages.pop(update.job_id, None)
        else:
            message = render.status_message(job, update, await render.encode_preview(update))
            for one in tracked:
                if message.key != one.shown or update.preview is not None:
                    await self._show_status(job, one, message)
        self.mark_shown(update.job_id, update.status)

    def _orphan(self, update: JobUpdate) -> None:
        if self._messages.get(update.job_id):  # its message was tracked while we looked
            self._again(update)
            return
        self._orphans[update.job_id] = update
        while len(self._orphans) > ORPHAN_LIMIT:  # jobs that never get a message (not ours)
            self._orphans.pop(next(iter(self._orphans)))

    def _retry_final(self, update: JobUpdate) -> None:
        """A result must not be lost to one failure: its message would say "Running" forever.
        Progress needs no retry (the next update replaces it)."""
        failures = self._final_failures.get(update.job_id, 0) + 1
        if failures >= FINAL_ATTEMPTS:
            self._final_failures.pop(update.job_id, None)
            log.error("job %s: gave up showing its result after %d attempts", update.job_id, failures)
            return
        self._final_failures[update.job_id] = failures
        self._again(update)

    def _again(self, update: JobUpdate) -> None:
        """Render `update` once more on the worker's next pass (unless a newer one is waiting)."""
        current = self._pending.get(update.job_id)
        if current is None or (update.final and not current.final):
            self._pending[update.job_id] = update
        self._dirty = True

    async def _show_status(self, job: Job, tracked: JobMessage, message: render.RenderedMessage) -> bool:
        """Edit one message; False when the edit did not happen (token expired, message deleted,
        Discord refused or failed). A progress edit is then simply tried again with the next
        update; for a result, `_show_final` posts a reply instead."""
        try:
            await self._edit(tracked, message)
        except TokenExpired:
            log.info("job %s: interaction token expired; its result will be a reply", job.id)
            return False
        except discord.NotFound:
            log.info("job %s: message %s is gone", job.id, tracked.message_id)
            return False
        except discord.HTTPException as exc:
            log.warning("job %s: could not edit message %s: %s", job.id, tracked.message_id, exc)
            return False
        tracked.last_edit = _now()
        tracked.shown = message.key
        return True

    async def _show_final(self, job: Job, tracked: list[JobMessage], message: render.RenderedMessage) -> None:
        shown = [await self._show_status(job, one, message) for one in tracked]
        if any(shown):
            return
        # No live message to edit: post the result as a reply to the job's last message.
        reply_to = tracked[-1].message_id if tracked else job.message_id
        channel_id = tracked[-1].channel_id if tracked else job.channel_id
        if channel_id is None:
            return
        sent = await self.send_to_channel(channel_id, message, reply_to=reply_to)
        if sent is not None:
            await self.services.store.add_message(job.id, sent.id, channel_id)

    async def _edit(self, tracked: JobMessage, message: render.RenderedMessage) -> None:
        kwargs = message.edit_kwargs()
        interaction = tracked.interaction
        if tracked.expired:
            raise TokenExpired
        if interaction is not None:
            if not token_valid(interaction):
                tracked.expired = True
                tracked.interaction = None
                raise TokenExpired
            if tracked.original:
                await interaction.edit_original_response(**kwargs)
            else:
                await interaction.followup.edit_message(tracked.message_id, **kwargs)
            return
        channel = self.bot.get_partial_messageable(tracked.channel_id)
        await channel.get_partial_message(tracked.message_id).edit(**kwargs)

    async def send_to_channel(
        self, channel_id: int, message: render.RenderedMessage, *, reply_to: int | None = None
    ) -> discord.Message | None:
        """Send `message` into a channel, replying to `reply_to` when that message still exists."""
        channel = self.bot.get_channel(channel_id) or self.bot.get_partial_messageable(channel_id)
        reference: discord.MessageReference | None = None
        if reply_to is not None:
            reference = discord.MessageReference(
                message_id=reply_to, channel_id=channel_id, fail_if_not_exists=False
            )
        try:
            return await channel.send(**message.send_kwargs(), reference=reference)  # type: ignore[union-attr,arg-type]
        except discord.Forbidden:
            log.warning("no permission to post in channel %s (Send Messages, Attach Files?)", channel_id)
            return None
        except discord.HTTPException:
            log.exception("could not post to channel %s", channel_id)
            return None

    # -- moderation helpers -----------------------------------------------------------------------

    async def replace_everywhere(self, job: Job, content: str) -> int:
        """Replace every message showing `job` with `content` (no image, no buttons).

        Used when a job is hidden by a moderator or deleted by its author. Waits for an edit of
        the job already under way, so that edit cannot land after the notice. Returns how many
        messages were changed; messages already gone are skipped.
        """
        async with self._editing(job.id):
            self._suppress(job.id)
            self._messages.pop(job.id, None)
            self._pending.pop(job.id, None)
            return await self._edit_all(job, render.RenderedMessage(content))

    async def edit_everywhere(self, job: Job, message: render.RenderedMessage) -> int:
        """Show `message` in every Discord message of `job` (unhide uses this; a job that is
        neither hidden nor deleted any more is the worker's to edit again)."""
        async with self._editing(job.id):
            if render.notice_message(job) is None:
                self._suppressed.pop(job.id, None)
            else:
                self._suppress(job.id)
            return await self._edit_all(job, message)

    def _suppress(self, job_id: str) -> None:
        self._suppressed[job_id] = None
        while len(self._suppressed) > SUPPRESSED_LIMIT:  # old jobs no longer run: forget them
            self._suppressed.pop(next(iter(self._suppressed)))

    @contextlib.asynccontextmanager
    async def _editing(self, job_id: str) -> AsyncIterator[None]:
        """Hold `job_id`'s edit lock; the lock is dropped when nobody holds or waits for it."""
        lock, users = self._locks.setdefault(job_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[job_id]

    async def _edit_all(self, job: Job, message: render.RenderedMessage) -> int:
        """Edit every message showing `job`, each in its own channel (a `/show` copy may be in
        another channel than the job's)."""
        changed = 0
        for channel_id, message_id in await self.services.store.job_messages(job.id):
            if channel_id is None:
                continue
            channel = self.bot.get_partial_messageable(channel_id)
            try:
                await channel.get_partial_message(message_id).edit(**message.edit_kwargs())
                changed += 1
            except discord.HTTPException as exc:
                log.info("job %s: could not edit message %s in %s: %s", job.id, message_id, channel_id, exc)
        return changed


def _now() -> float:
    return time.monotonic()
