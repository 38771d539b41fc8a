"""Where a job is shown (`JobMessage`) and whether the interaction it was posted through can still
edit it: Discord lets an interaction's token be used for 15 minutes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import discord

from storage.models import Job

INTERACTION_LIFETIME = timedelta(minutes=15)
TOKEN_MARGIN = timedelta(seconds=30)  # stop using a token a little early: an edit takes time


@dataclass
class JobMessage:
    """Where one job is shown and how to reach that message."""

    job_id: str
    channel_id: int
    message_id: int
    interaction: discord.Interaction | None = None  # set while the message belongs to one
    original: bool = False  # the interaction's original response (else a follow-up)
    expired: bool = False  # its interaction's 15 minutes are over: it can no longer be edited
    last_edit: float = field(default=-1e18)
    shown: str = ""  # the last status rendered, to skip identical edits
    job: Job | None = None  # the row as posted: what a status line needs never changes


class TokenExpired(Exception):
    """The interaction's 15 minutes are over; the message can no longer be edited through it."""


def token_valid(interaction: discord.Interaction) -> bool:
    """True while the interaction's token may still be used (Discord allows 15 minutes)."""
    return discord.utils.utcnow() < interaction.created_at + INTERACTION_LIFETIME - TOKEN_MARGIN
