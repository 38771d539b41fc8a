"""The job buttons: one `DynamicItem` class whose `custom_id` carries the whole state.

`imagine:<action>:<job id>[:<cell>]` is all a button knows; everything else (the prompt, the
image, who made it, whether it was hidden) is loaded from the store when it is clicked. That is
what lets a button work the same a minute, a month, or a restart later, with no view kept in
memory and nothing to re-register per message.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol, cast

import discord

from bot.discord.replies import answer_internal_error

log = logging.getLogger(__name__)

# Actions and their exact labels (DESIGN.md fixes the labels; users and tests read them).
GRID_ROWS: tuple[tuple[str, ...], ...] = (
    ("upscale:1", "upscale:2", "upscale:3", "upscale:4", "reroll"),
    ("vary:1", "vary:2", "vary:3", "vary:4"),
)
SINGLE_ROWS: tuple[tuple[str, ...], ...] = (
    ("vary_subtle", "vary_strong"),
    ("upscale_subtle", "upscale_creative"),
    ("zoom_2", "zoom_1_5", "zoom_custom", "square"),
    ("pan_left", "pan_right", "pan_up", "pan_down"),
)

LABELS: dict[str, str] = {
    "reroll": "🔄",
    "vary_subtle": "Vary (Subtle)",
    "vary_strong": "Vary (Strong)",
    "upscale_subtle": "Upscale (Subtle)",
    "upscale_creative": "Upscale (Creative)",
    "zoom_2": "Zoom Out 2x",
    "zoom_1_5": "Zoom Out 1.5x",
    "zoom_custom": "Custom Zoom",
    "square": "Make Square",
    "pan_left": "⬅️",
    "pan_right": "➡️",
    "pan_up": "⬆️",
    "pan_down": "⬇️",
    "cancel": "Cancel",
    "region": "Vary (Region)",  # on upscales when Imagine Web is set up: a private link to the editor
}
ACTIONS = frozenset({"upscale", "vary", "prompt", *LABELS})
CELL_ACTIONS = frozenset({"upscale", "vary"})  # these need a cell index 1-4
# `prompt:N` runs prompt N (1-5) that a /shorten or /describe answer offers, labelled `N`.
PROMPT_OPTIONS = 5

_STYLES: dict[str, discord.ButtonStyle] = {
    "reroll": discord.ButtonStyle.secondary,
    "cancel": discord.ButtonStyle.danger,
}


@dataclass(frozen=True)
class ButtonSpec:
    """What a button does: the action, the job it acts on, and the grid cell (1-4) if any."""

    action: str
    job_id: str
    index: int | None = None

    @property
    def custom_id(self) -> str:
        suffix = f":{self.index}" if self.index is not None else ""
        return f"imagine:{self.action}:{self.job_id}{suffix}"

    @property
    def label(self) -> str:
        if self.action == "upscale":
            return f"U{self.index}"
        if self.action == "vary":
            return f"V{self.index}"
        if self.action == "prompt":
            return str(self.index)
        return LABELS.get(self.action, self.action)  # a forged or retired action still renders


class JobButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"imagine:(?P<action>[a-z0-9_]+):(?P<job>[0-9a-f-]{36})(?::(?P<index>\d))?",
):
    """A button on a job message. The click itself is handled by the Imagine cog."""

    def __init__(self, spec: ButtonSpec, *, row: int | None = None) -> None:
        style = _STYLES.get(spec.action, discord.ButtonStyle.secondary)
        if spec.action in CELL_ACTIONS:
            style = discord.ButtonStyle.primary if spec.action == "upscale" else discord.ButtonStyle.secondary
        super().__init__(discord.ui.Button(label=spec.label, style=style, custom_id=spec.custom_id, row=row))
        self.spec = spec

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        index = match["index"]
        spec = ButtonSpec(match["action"], match["job"], int(index) if index is not None else None)
        return cls(spec)

    async def callback(self, interaction: discord.Interaction) -> None:
        client = cast(_ButtonClient, interaction.client)
        try:
            await client.actions.on_button(interaction, self.spec)
        except Exception as exc:
            # Left to discord.py, a bug here is one log line and "This interaction failed" (or a
            # deferral that never resolves) for the member; say something, and log the job.
            what = f"button {self.spec.action} on job {self.spec.job_id}"
            await answer_internal_error(interaction, what, exc)


class ButtonHandler(Protocol):
    """What a click is handed to (`JobActions`); a Protocol so the buttons need not import it."""

    async def on_button(self, interaction: discord.Interaction, spec: ButtonSpec) -> None: ...


class _ButtonClient(Protocol):
    actions: ButtonHandler


def job_view(rows: list[list[ButtonSpec]]) -> discord.ui.View:
    """A view of job buttons, one Discord row per list. `timeout=None`: buttons never expire."""
    view = discord.ui.View(timeout=None)
    for row_number, row in enumerate(rows):
        for spec in row:
            view.add_item(JobButton(spec, row=row_number))
    return view
