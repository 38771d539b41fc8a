"""`/info`, `/show` and `/prefer suffix`: a member's view of their jobs and preferences."""

from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.core.options import check_option, expand_options
from bot.core.png_info import saved_parameters
from bot.discord import render
from bot.discord.app import BotCog, ImagineBot
from bot.discord.job_actions.actions import UNKNOWN_JOB
from bot.discord.permissions import view_refusal
from bot.discord.replies import clip, refuse
from bot.discord.settings.fast import fast_line
from bot.prompt import PromptError, parse_prompt
from storage.errors import InvalidInputError

log = logging.getLogger(__name__)

INFO_JOBS = 10  # jobs listed by /info; more are summarised as a count


class Info(BotCog):
    """Your jobs, the queue, and your settings."""

    prefer = app_commands.Group(name="prefer", description="Your defaults for /imagine", guild_only=True)
    prefer_option = app_commands.Group(
        name="option", description="Your own --name parameters for a bundle of parameters", parent=prefer
    )

    @app_commands.command(name="info")
    @app_commands.guild_only()
    async def info(self, interaction: discord.Interaction) -> None:
        """Your waiting and running jobs, the queue, the model"""
        services = self.bot.services
        dispatcher = services.dispatcher
        jobs = await services.store.user_jobs(interaction.user.id, statuses=["queued", "running"])
        jobs.sort(key=lambda job: (job.status != "running", dispatcher.position(job.id) or 0))
        lines = [
            f"**Model:** `{services.info.name}`",
            f"**Queue:** {dispatcher.queue_length()} waiting, {dispatcher.running_count()} running",
        ]
        if jobs:
            lines.append(f"**Your jobs ({len(jobs)}):**")
            for job in jobs[:INFO_JOBS]:
                position = dispatcher.position(job.id)
                state = (
                    "running"
                    if job.status == "running"
                    else (f"waiting, position {position}" if position else "waiting")
                )
                prompt = clip(discord.utils.escape_markdown(job.prompt or ""), 80)
                lines.append(f"- `{job.id}` {state}: {prompt}")
            if len(jobs) > INFO_JOBS:
                lines.append(f"- … and {len(jobs) - INFO_JOBS} more")
        else:
            lines.append("**Your jobs:** none waiting or running")
        prefs = await services.store.user_prefs(interaction.user.id)
        suffix = f"`{prefs.suffix}`" if prefs.suffix else "none (set one with `/prefer suffix`)"
        lines.append(f"**Your suffix:** {suffix}")
        lines.append(await fast_line(self.bot, interaction))
        await interaction.response.send_message("\n".join(lines), ephemeral=True)

    @app_commands.command(name="show")
    @app_commands.guild_only()
    async def show(self, interaction: discord.Interaction, job_id: str) -> None:
        """Post a job again, with working buttons

        Args:
            job_id: The job id (shown under every result)
        """
        job = await self.bot.services.store.get_job(job_id.strip())
        if job is None:
            await refuse(interaction, UNKNOWN_JOB.format(job_id=job_id.strip()))
            return
        settings = await self.bot.services.store.guild_settings(interaction.guild_id or 0)
        refusal = view_refusal(interaction, job, settings)
        if refusal is not None:
            await refuse(interaction, refusal)
            return
        notice = render.notice_message(job)
        if notice is not None:
            await refuse(interaction, notice.content)
            return
        await interaction.response.defer(thinking=True)
        limit = render.filesize_limit(interaction.guild)
        message = await render.job_message(job, self.bot.services, filesize_limit=limit)
        sent = await interaction.edit_original_response(**message.edit_kwargs())
        if job.status in ("queued", "running"):  # keep this copy up to date too
            self.bot.messenger.track(
                job.id, interaction.channel_id or 0, sent.id, interaction=interaction, original=True, job=job
            )
        await self.bot.services.store.add_message(job.id, sent.id, interaction.channel_id)
        parameters = saved_parameters(self.bot.services.store, job)
        if parameters is not None:  # how it was made, as the PNG says it (only the asker sees it)
            block = clip(parameters, 1800).replace("```", "`\u200b``")
            await interaction.followup.send(
                f"Parameters of job `{job.id}`:\n```\n{block}\n```", ephemeral=True
            )

    @prefer.command(name="suffix")
    async def suffix(self, interaction: discord.Interaction, value: str | None = None) -> None:
        """Parameters added to the end of each of your prompts

        Args:
            value: e.g. --ar 16:9 --stylize 250; leave empty to clear
        """
        value = " ".join((value or "").split())
        if value:
            try:
                options = await self.bot.services.store.prompt_options(interaction.user.id)
                parse_prompt(f"suffix check {expand_options(value, options)}")
            except PromptError as exc:
                await refuse(interaction, f"That suffix does not work: {exc}")
                return
        await self.bot.services.store.set_user_suffix(interaction.user.id, value)
        text = f"Your prompts now end with `{value}`." if value else "Your suffix is cleared."
        await interaction.response.send_message(text, ephemeral=True)

    @prefer_option.command(name="set")
    async def option_set(
        self, interaction: discord.Interaction, option: str, value: str | None = None
    ) -> None:
        """--name in your prompts stands for these parameters

        Args:
            option: the name, e.g. cinematic (use it as --cinematic)
            value: e.g. --ar 21:9 --stylize 250; leave empty to remove the option
        """
        store = self.bot.services.store
        if not (value or "").strip():
            name = option.strip().lstrip("-—").lower()
            removed = await store.set_prompt_option(interaction.user.id, name, None) if name else False
            text = f"Removed `--{name}`." if removed else f"You have no option `--{name}`."
            await interaction.response.send_message(text, ephemeral=True)
            return
        try:
            name, folded = check_option(option, value or "")
            await store.set_prompt_option(interaction.user.id, name, folded)
        except (PromptError, InvalidInputError) as exc:
            await refuse(interaction, f"That option does not work: {exc}")
            return
        await interaction.response.send_message(
            f"`--{name}` in your prompts now stands for `{folded}`.", ephemeral=True
        )

    @prefer_option.command(name="list")
    async def option_list(self, interaction: discord.Interaction) -> None:
        """Your --name options"""
        options = await self.bot.services.store.prompt_options(interaction.user.id)
        if not options:
            text = "You have no options; make one with `/prefer option set`."
        else:
            text = "\n".join(f"`--{name}` = `{value}`" for name, value in options.items())
        await interaction.response.send_message(clip(text, 1900), ephemeral=True)


async def setup(bot: ImagineBot) -> None:
    await bot.add_cog(Info(bot))
