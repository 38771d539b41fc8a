"""Who may do what with a job's buttons and messages.

Defaults follow Midjourney: anyone in the channel may click a result's buttons and the new job is
theirs; a guild can restrict buttons to the job's author (`author_only_buttons`). Cancel and
delete belong to the author, and moderators (Manage Messages, or the guild's moderator role) may
do everything.
"""

from __future__ import annotations

import discord

from bot.core.stealth import hidden_from
from storage.models import GuildSettings, Job

# Another server's job (or a console job) is not this server's: its moderators could neither see
# it in their history nor hide it, so it can be neither reposted nor acted on here. Another
# member's stealth job gets the same sentence, so a refusal does not tell that it exists.
NOT_IN_THIS_SERVER = "There is no job `{job_id}` in this server."


def is_moderator(interaction: discord.Interaction, settings: GuildSettings | None = None) -> bool:
    """True for members with Manage Messages in the channel or the guild's moderator role.

    `settings` is the guild's `GuildSettings` row (its `moderator_role_id`), or None.
    """
    user = interaction.user
    if not isinstance(user, discord.Member):
        return False
    if interaction.permissions.manage_messages or user.guild_permissions.manage_messages:
        return True
    role_id = getattr(settings, "moderator_role_id", None)
    return role_id is not None and any(role.id == role_id for role in user.roles)


def view_refusal(interaction: discord.Interaction, job: Job, settings: GuildSettings | None) -> str | None:
    """Why this user may not see `job` here (another server's, or another member's stealth job)."""
    if job.guild_id != interaction.guild_id or hidden_from(
        job, interaction.user.id, is_moderator(interaction, settings)
    ):
        return NOT_IN_THIS_SERVER.format(job_id=job.id)
    return None


def click_refusal(
    interaction: discord.Interaction, job: Job, settings: GuildSettings | None, action: str
) -> str | None:
    """Why this user may not press `action` on `job`, or None when they may."""
    refusal = view_refusal(interaction, job, settings)  # a forged or copied custom_id, or stealth
    if refusal is not None:
        return refusal
    is_author = interaction.user.id == job.user_id
    if action == "cancel":
        if is_author or is_moderator(interaction, settings):
            return None
        return "Only the author of this job or a moderator can cancel it."
    if (
        getattr(settings, "author_only_buttons", False)
        and not is_author
        and not is_moderator(interaction, settings)
    ):
        return f"On this server only the author (<@{job.user_id}>) can use this job's buttons."
    return None
