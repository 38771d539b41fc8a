"""Starting jobs from Discord: `/imagine` after its checks, and every job button.

Both end the same way: job rows from `JobService`, a first message per job ("Waiting to start"),
and the messenger keeping that message up to date. A refusal (bad prompt, ban, banned word, a
limit, an unsafe image link, a hidden job) is an ephemeral message with the reason and changes
nothing.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Protocol

import discord

from bot.core.decode import MAX_BYTES, ImageFetchError, decode_attachment
from bot.core.fast import NOTICE_KEY
from bot.core.jobs import Action, Requester
from bot.core.ports import ImageFetcher
from bot.core.references import fetch_references
from bot.core.services import Services
from bot.core.web_access import region_path
from bot.discord import render
from bot.discord.buttons import ACTIONS, CELL_ACTIONS, PROMPT_OPTIONS, ButtonSpec
from bot.discord.job_actions.remix import REMIX_BUTTONS, RemixModal, remix_too_long
from bot.discord.job_actions.zoom import CustomZoomModal
from bot.discord.messenger import JobMessenger
from bot.discord.permissions import click_refusal, is_moderator
from bot.discord.replies import refuse, user_errors
from bot.discord.web_links import send_link
from engine.api import ImageData
from storage.models import GuildSettings, Job, JobStatus

log = logging.getLogger(__name__)

ZOOMS = {"zoom_2": 2.0, "zoom_1_5": 1.5}
PANS = {"pan_left": "left", "pan_right": "right", "pan_up": "up", "pan_down": "down"}
UNKNOWN_JOB = "I can't find job `{job_id}`; it may have been removed."


def requester_for(interaction: discord.Interaction) -> Requester:
    roles = getattr(interaction.user, "roles", None) or []  # a Member has roles; a DM's User none
    return Requester(
        user_id=interaction.user.id,
        user_name=str(interaction.user),
        guild_id=interaction.guild_id,
        channel_id=interaction.channel_id,
        source="discord",
        role_ids=tuple(role.id for role in roles),
    )


async def tell_speed_notice(interaction: discord.Interaction, jobs: list[Job]) -> None:
    """Say privately, once, when Fast time ran out and the jobs run in Relax (never silently)."""
    notices = {(job.params or {}).get(NOTICE_KEY) for job in jobs} - {None}
    for notice in notices:
        await interaction.followup.send(str(notice), ephemeral=True)


def channel_refusal(settings: GuildSettings | None, interaction: discord.Interaction) -> str | None:
    """Why the bot does not make images in this channel (moderators chose others), or None.
    `settings`: the guild's, already read (None outside a guild)."""
    if settings is None:
        return None
    allowed = [int(c) for c in settings.allowed_channel_ids or []]
    channel = interaction.channel
    ids = {interaction.channel_id, getattr(channel, "parent_id", None)}  # a thread counts as its channel
    if not allowed or ids & set(allowed):
        return None
    where = ", ".join(f"<#{c}>" for c in allowed)
    return f"I don't make images in this channel; on this server use {where}."


async def attachment_image(attachment: discord.Attachment) -> ImageData:
    """An attached picture, within the same limits as a fetched one; `ImageFetchError` says why not."""
    if attachment.size > MAX_BYTES:
        size, limit = attachment.size / 1e6, MAX_BYTES / 1e6
        raise ImageFetchError(f"The attached file is {size:.1f} MB; the limit is {limit:.0f} MB.")
    data = await attachment.read()
    return await decode_attachment(data, attachment.content_type)


class ActionsHost(Protocol):
    """The bot as the actions see it (`ImagineBot`): the shared services and the messenger."""

    services: Services
    messenger: JobMessenger


class JobActions:
    """What `/imagine`, the buttons and the Custom Zoom modal do once a click is accepted."""

    def __init__(self, bot: ActionsHost, fetch_image: ImageFetcher) -> None:
        self.bot = bot
        self.fetch_image = fetch_image

    @property
    def services(self) -> Services:
        return self.bot.services

    # -- /imagine -------------------------------------------------------------------------------

    async def imagine(
        self,
        interaction: discord.Interaction,
        raw_prompt: str,
        attachment: discord.Attachment | None,
        image_url: str | None,
    ) -> list[Job]:
        """Defer, fetch the image prompt, create the jobs, post one message per job."""
        if not interaction.response.is_done():
            await interaction.response.defer(thinking=True)
        requester = requester_for(interaction)
        try:
            urls = await self.services.jobs.reference_urls(requester, raw_prompt)
            init_image = await self._image_prompt(attachment, image_url)
            references = await fetch_references(urls, self.fetch_image)
            jobs = await self.services.jobs.imagine(
                requester, raw_prompt, init_image=init_image, references=references
            )
        except user_errors() as exc:
            await refuse(interaction, str(exc))
            return []
        await self.post_new_jobs(interaction, jobs)
        return jobs

    async def post_new_jobs(self, interaction: discord.Interaction, jobs: list[Job]) -> None:
        """One "waiting" message per new job (the first replaces a command's deferral), each kept
        up to date by the messenger and recorded as the job's message."""
        if not jobs:
            await refuse(interaction, "That prompt made no jobs.")
            return
        first_is_original = interaction.type == discord.InteractionType.application_command
        for number, job in enumerate(jobs):
            message = render.waiting_message(job, self.services.dispatcher.position(job.id))
            if number == 0 and first_is_original:
                sent: discord.abc.Snowflake = await interaction.edit_original_response(
                    **message.edit_kwargs()
                )
            else:
                sent = await interaction.followup.send(**message.send_kwargs(), wait=True)
            self.bot.messenger.track(
                job.id,
                interaction.channel_id or 0,
                sent.id,
                interaction=interaction,
                original=number == 0 and first_is_original,
                job=job,
            )
            await self.services.store.add_message(job.id, sent.id, interaction.channel_id)
        await tell_speed_notice(interaction, jobs)

    async def _image_prompt(self, attachment: discord.Attachment | None, url: str | None) -> ImageData | None:
        if attachment is not None:
            return await attachment_image(attachment)
        if url is not None:
            return await self.fetch_image(url)
        return None

    # -- buttons ----------------------------------------------------------------------------------

    async def on_button(self, interaction: discord.Interaction, spec: ButtonSpec) -> None:
        prompt_index_ok = spec.action != "prompt" or (
            spec.index is not None and 1 <= spec.index <= PROMPT_OPTIONS
        )
        if (
            spec.action not in ACTIONS
            or (spec.action in CELL_ACTIONS and spec.index not in (1, 2, 3, 4))
            or not prompt_index_ok
        ):
            await refuse(interaction, "That button is not one I know; it may come from an older version.")
            return
        job = await self.checked_job(interaction, spec.job_id, spec.action)
        if job is None:
            return
        if spec.action == "cancel":
            await self.cancel(interaction, job)
            return
        if spec.action == "region":
            await send_link(
                interaction, self.services, target=region_path(job.id), label="Open the region editor"
            )
            return
        if spec.action == "zoom_custom":
            too_long = CustomZoomModal.too_long(job)
            if too_long is not None:
                await refuse(interaction, too_long)
                return
            await interaction.response.send_modal(CustomZoomModal(self.zoom_custom, job))
            return
        if spec.action in REMIX_BUTTONS and await self.remix_on(interaction):
            too_long = remix_too_long(job)
            if too_long is not None:
                await refuse(interaction, too_long)
                return
            submit = functools.partial(self.remix_submitted, spec)
            await interaction.response.send_modal(RemixModal(submit, job, spec.label))
            return
        await interaction.response.defer()
        if spec.action == "prompt":
            await self.run_prompt(interaction, job, spec.index or 0)
            return
        await self.derive(interaction, job, spec.action, spec.index)

    async def remix_on(self, interaction: discord.Interaction) -> bool:
        """Whether the member turned Remix on in /settings (on this server)."""
        settings = await self.services.store.member_settings(interaction.user.id, interaction.guild_id)
        return bool(settings.remix)

    async def remix_submitted(
        self, spec: ButtonSpec, interaction: discord.Interaction, parent: Job, prompt_override: str | None
    ) -> Job | None:
        """A submitted Remix modal: the button's job, driven by the edited prompt when it changed."""
        zoom = ZOOMS.get(spec.action)
        return await self.derive(
            interaction, parent, spec.action, spec.index, zoom=zoom, prompt_override=prompt_override
        )

    async def run_prompt(self, interaction: discord.Interaction, answer: Job, number: int) -> list[Job]:
        """Prompt `number` of a /shorten or /describe answer, imagined as a job derived from it."""
        try:
            jobs = await self.services.prompt_tools.run_option(requester_for(interaction), answer.id, number)
        except user_errors() as exc:
            await refuse(interaction, str(exc))
            return []
        await self.post_new_jobs(interaction, jobs)
        return jobs

    async def checked_job(self, interaction: discord.Interaction, job_id: str, action: str) -> Job | None:
        """The job a click acts on, or None after telling the member why they cannot."""
        store = self.services.store
        job = await store.get_job(job_id)
        if job is None:
            await refuse(interaction, UNKNOWN_JOB.format(job_id=job_id))
            return None
        notice = render.notice_message(job)
        if notice is not None:
            await refuse(interaction, notice.content)
            return None
        settings = await store.guild_settings(interaction.guild_id) if interaction.guild_id else None
        refusal = click_refusal(interaction, job, settings, action)
        if refusal is None and action != "cancel":
            refusal = channel_refusal(settings, interaction)
        if refusal is not None:
            await refuse(interaction, refusal)
            return None
        return job

    async def cancel(self, interaction: discord.Interaction, job: Job) -> None:
        if await self.services.dispatcher.cancel(job.id):
            await interaction.response.send_message(f"Cancelling job `{job.id}`.", ephemeral=True)
        else:
            await refuse(interaction, f"Job `{job.id}` is not waiting or running any more.")

    async def zoom_custom(
        self, interaction: discord.Interaction, parent: Job, zoom: float, prompt_override: str | None
    ) -> Job | None:
        """A submitted Custom Zoom: the zoom job, with the edited prompt when it was changed."""
        return await self.derive(
            interaction, parent, "zoom_custom", zoom=zoom, prompt_override=prompt_override
        )

    async def derive(
        self,
        interaction: discord.Interaction,
        parent: Job,
        action: str,
        index: int | None = None,
        *,
        zoom: float | None = None,
        prompt_override: str | None = None,
    ) -> Job | None:
        """Start the job a button asks for and post its message as a reply to the parent's."""
        kwargs: dict[str, Any] = {}
        if action in ZOOMS or action == "zoom_custom":
            job_action, kwargs["zoom"] = Action.ZOOM, zoom if zoom is not None else ZOOMS[action]
        elif action in PANS:
            job_action, kwargs["direction"] = Action.PAN, PANS[action]
        else:
            job_action = Action(action)
        if index is not None:
            kwargs["index"] = index - 1  # buttons say U1-U4; cells are numbered from 0
        if prompt_override is not None:
            kwargs["prompt_override"] = prompt_override
        try:
            job = await self.services.jobs.derive(requester_for(interaction), parent.id, job_action, **kwargs)
        except user_errors() as exc:
            await refuse(interaction, str(exc))
            return None
        finished = JobStatus(job.status).finished  # U1-U4 need no engine
        if finished:
            message = await render.job_message(
                job, self.services, filesize_limit=render.filesize_limit(interaction.guild)
            )
        else:
            message = render.waiting_message(job, self.services.dispatcher.position(job.id))
        reply_to = interaction.message.id if interaction.message is not None else parent.message_id
        # A click always comes from a channel; the parent's is the fallback for the type checker.
        channel_id = interaction.channel_id or parent.channel_id or 0
        sent = await self.bot.messenger.send_to_channel(channel_id, message, reply_to=reply_to)
        if finished:
            self.bot.messenger.mark_shown(job.id, job.status)
        if sent is not None:
            if not finished:
                self.bot.messenger.track(job.id, channel_id, sent.id, job=job)
        else:  # no permission to post in the channel: answer through the interaction instead
            followup = await interaction.followup.send(**message.send_kwargs(), wait=True)
            if not finished:
                self.bot.messenger.track(job.id, channel_id, followup.id, interaction=interaction, job=job)
            sent = followup
        await self.services.store.add_message(job.id, sent.id, channel_id)
        await tell_speed_notice(interaction, [job])
        return job

    # -- the author's delete ----------------------------------------------------------------------

    async def delete(self, interaction: discord.Interaction, message: discord.Message) -> None:
        store = self.services.store
        job = await store.find_job_by_message(message.id)
        if job is None:
            await refuse(interaction, "That message is not an Imagine job.")
            return
        settings = await store.guild_settings(interaction.guild_id) if interaction.guild_id else None
        if interaction.user.id != job.user_id and not is_moderator(interaction, settings):
            await refuse(interaction, "Only the author of this job can delete it.")
            return
        if job.deleted:
            await refuse(interaction, render.DELETED_NOTICE)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        await self.services.dispatcher.cancel(job.id)  # a job still waiting or running stops too
        job = await store.update_job(job.id, deleted=True)
        await self.bot.messenger.replace_everywhere(job, render.DELETED_NOTICE)
        await interaction.followup.send(f"Deleted job `{job.id}`.", ephemeral=True)
