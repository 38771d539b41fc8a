"""Stealth, as in Midjourney: a member's jobs seen only by them and the server's moderators.

A server allows it (`GuildSettings.allow_stealth`, off by default); a member on such a server
chooses it in /settings or with `/stealth` (`/public` goes back). Whether a job is stealth is
decided when it is made and recorded in its params, so changing the setting later (or the server
no longer allowing it) never exposes or hides a job after the fact; new jobs are public then.
"""

from __future__ import annotations

from typing import Any

from storage.models import GuildSettings, Job, MemberSettings

STEALTH_KEY = "stealth"  # params key: True on a job only its author and moderators may see


def stealth_active(member: MemberSettings | None, guild: GuildSettings | None) -> bool:
    """Whether the member's new jobs are stealth: they chose it and the server allows it."""
    return bool(member is not None and member.stealth and guild is not None and guild.allow_stealth)


def stealth_params(member: MemberSettings | None, guild: GuildSettings | None) -> dict[str, Any]:
    """The params entry that marks a new job stealth (none for a public job)."""
    return {STEALTH_KEY: True} if stealth_active(member, guild) else {}


def is_stealth(job: Job) -> bool:
    return bool((job.params or {}).get(STEALTH_KEY))


def hidden_from(job: Job, user_id: int, moderator: bool) -> bool:
    """Whether a stealth job is hidden from this member (everyone but its author and moderators)."""
    return is_stealth(job) and user_id != job.user_id and not moderator


__all__ = ["STEALTH_KEY", "hidden_from", "is_stealth", "stealth_active", "stealth_params"]
