"""The moderators' forms: a reason (hide, report), and a ban with its duration."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.discord.moderation.embeds import VIEW_TIMEOUT_S
from bot.discord.replies import answer_internal_error, clip

log = logging.getLogger(__name__)


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

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]  # a Modal has no item
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

    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]  # a Modal has no item
        await answer_internal_error(interaction, f"form {self.title!r}", error)


# ---------------------------------------------------------------------------------------------
# Views
# ---------------------------------------------------------------------------------------------
