"""Replies and errors: the private answer a member gets when nothing happened, and why.

The leaf of the Discord layer: every feature (imagine, job actions, moderation, info) and the
app import it, and it imports nothing of `bot.discord`, so no feature needs a function-local
import to reach `refuse` or `answer_internal_error`.
"""

from __future__ import annotations

import contextlib
import logging

import discord

from bot.core.decode import ImageFetchError
from bot.core.jobs import JobError
from bot.core.limits import LimitError
from bot.core.moderation import BannedError, BlockedError
from bot.prompt import PromptError
from storage.errors import DatabaseBusyError, JobStateError

log = logging.getLogger(__name__)

INTERNAL_ERROR = "Something went wrong on my side; the operator can find the details in the log."
MESSAGE_LIMIT = 2000  # Discord's limit on a message's content, in characters

# The exceptions whose message is meant for the member (everything else is a bug).
# JobError covers an unknown or hidden job, a job not done yet and a bad cell index.
USER_ERRORS: tuple[type[BaseException], ...] = (
    PromptError,
    BannedError,
    BlockedError,
    LimitError,
    ImageFetchError,
    JobError,
    JobStateError,
    DatabaseBusyError,  # "the database stayed busy …; please try again in a moment"
)


def user_errors() -> tuple[type[BaseException], ...]:
    """The exceptions whose message is meant for the member (everything else is a bug)."""
    return USER_ERRORS


def clip(text: str | None, limit: int) -> str:
    """`text` stripped, and cut to `limit` characters with an ellipsis when longer."""
    text = (text or "").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def message_text(text: str | None) -> str:
    """`text` cut to what Discord accepts in one message: a refusal built from outside text (an
    error, a remote server's words) must still arrive rather than fail with a 400."""
    return clip(text, MESSAGE_LIMIT)


async def refuse(interaction: discord.Interaction, text: str) -> None:
    """Tell only this member why nothing happened (capped to one Discord message)."""
    text = message_text(text)
    if not interaction.response.is_done():
        await interaction.response.send_message(text, ephemeral=True)
        return
    if interaction.type == discord.InteractionType.application_command:
        # A public "thinking…" placeholder is showing, and until it is completed a follow-up
        # would only replace it (publicly). Complete it, remove it, then answer privately.
        with contextlib.suppress(discord.HTTPException):
            await interaction.edit_original_response(content="…")
            await interaction.delete_original_response()
    await interaction.followup.send(text, ephemeral=True)


async def answer_internal_error(interaction: discord.Interaction, what: str, error: BaseException) -> None:
    """A bug behind a command, button or form: log it (`what` failed) with its traceback, and tell
    the member privately rather than leave "This interaction failed" or a deferral that never
    resolves."""
    log.error("%s failed", what, exc_info=error)
    with contextlib.suppress(discord.HTTPException):
        await refuse(interaction, INTERNAL_ERROR)
