"""The /settings message: its text, its buttons and selects, and what each choice does.

Every component is a `DynamicItem` whose `custom_id` says which setting it changes
(`imagine-settings:<setting>[:<value>]`), and the member is the one who clicks (the message is
ephemeral, so only they can), so a /settings message works after a restart like a job button.
Each choice is stored at once and the message is redrawn from the store.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol, Self, cast

import discord

from bot.core.member_settings import STYLIZE_PRESETS, stylize_preset
from bot.core.services import Services
from bot.core.stealth import stealth_active
from bot.discord.replies import answer_internal_error, refuse
from storage.models import GuildSettings, MemberSettings

log = logging.getLogger(__name__)

PREFIX = "imagine-settings"
ON = discord.ButtonStyle.success
OFF = discord.ButtonStyle.secondary


class _SettingsClient(Protocol):
    services: Services


def versions_for(services: Services) -> list[str]:
    """The `--v` names the operator configured for the model this bot runs (what /settings offers)."""
    jobs = services.jobs
    return sorted(name for name, model in jobs.versions.items() if model == jobs.model_name)


def settings_text(settings: MemberSettings, services: Services, guild: GuildSettings | None = None) -> str:
    on_off = {True: "on", False: "off"}
    # Public/Stealth is shown only where the server allows Stealth (elsewhere every job is public).
    privacy = ""
    if guild is not None and guild.allow_stealth:
        privacy = " · Visibility: " + ("stealth" if stealth_active(settings, guild) else "public")
    model = f"--v {settings.version}" if settings.version else f"{services.jobs.model_name} (default)"
    return "\n".join(
        [
            "**Your settings on this server**: defaults for your prompts (a prompt's own parameters win).",
            f"Model: `{model}` · Stylize: {stylize_preset(settings.stylize)} · "
            f"Raw: {on_off[bool(settings.raw)]} · Remix: {on_off[bool(settings.remix)]} · "
            f"Variation: {settings.variation} · Mode: {settings.speed}"
            + (f" · Style: {settings.lora}" if settings.lora else "")
            + privacy,
        ]
    )


def settings_view(
    settings: MemberSettings, services: Services, guild: GuildSettings | None = None
) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    versions = versions_for(services)
    if versions:
        options = [
            discord.SelectOption(label=f"--v {name}", value=name, default=name == settings.version)
            for name in versions[:25]
        ]
        view.add_item(SettingsSelect("version", options, "Model", row=0))
    preset = stylize_preset(settings.stylize)
    options = [
        discord.SelectOption(
            label=f"Stylize {name} (--stylize {number})", value=name.replace(" ", "_"), default=name == preset
        )
        for name, number in STYLIZE_PRESETS.items()
    ]
    view.add_item(SettingsSelect("stylize", options, "Stylize", row=1))
    buttons = [
        ("raw", None, "Raw Mode", bool(settings.raw)),
        ("remix", None, "Remix mode", bool(settings.remix)),
        ("variation", "high", "High Variation Mode", settings.variation == "high"),
        ("variation", "low", "Low Variation Mode", settings.variation == "low"),
    ]
    if guild is not None and guild.allow_stealth:  # off: Public mode, the default
        buttons.append(("stealth", None, "Stealth mode", bool(settings.stealth)))
    for name, value, label, on in buttons:
        view.add_item(SettingsButton(name, value, label, ON if on else OFF, row=2))
    speeds = [("fast", "Fast mode"), ("relax", "Relax mode")]
    if services.jobs.turbo_allowed:
        speeds.insert(0, ("turbo", "Turbo mode"))
    for value, label in speeds:
        view.add_item(SettingsButton("speed", value, label, ON if settings.speed == value else OFF, row=3))
    view.add_item(SettingsButton("reset", None, "Reset Settings", discord.ButtonStyle.danger, row=3))
    loras = services.info.loras
    if loras:
        options = [discord.SelectOption(label="No style", value="none", default=settings.lora is None)]
        options += [
            discord.SelectOption(label=f"Style: {name}", value=name, default=name == settings.lora)
            for name in loras[:24]
        ]
        view.add_item(SettingsSelect("lora", options, "Style (LoRA)", row=4))
    return view


async def apply_choice(interaction: discord.Interaction, name: str, value: str | None) -> None:
    """Store one choice and redraw the message; a bug is logged and told to the member."""
    try:
        await _apply(interaction, name, value)
    except Exception as exc:
        await answer_internal_error(interaction, f"/settings choice {name}", exc)


async def _apply(interaction: discord.Interaction, name: str, value: str | None) -> None:
    """Store one choice and redraw the message; a choice that is no longer offered is refused."""
    services = cast(_SettingsClient, interaction.client).services
    store = services.store
    user_id, guild_id = interaction.user.id, interaction.guild_id
    current = await store.member_settings(user_id, guild_id)
    guild = await store.guild_settings(guild_id) if guild_id is not None else None
    if name == "reset":
        settings = await store.reset_member_settings(user_id, guild_id)
    elif name == "raw":
        settings = await store.update_member_settings(user_id, guild_id, raw=not current.raw)
    elif name == "remix":
        settings = await store.update_member_settings(user_id, guild_id, remix=not current.remix)
    elif name == "speed" and (
        value in ("fast", "relax") or (value == "turbo" and services.jobs.turbo_allowed)
    ):
        settings = await store.update_member_settings(user_id, guild_id, speed=str(value))
    elif name == "variation" and value in ("high", "low"):
        settings = await store.update_member_settings(user_id, guild_id, variation=value)
    elif name == "stylize" and value is not None and value.replace("_", " ") in STYLIZE_PRESETS:
        settings = await store.update_member_settings(
            user_id, guild_id, stylize=STYLIZE_PRESETS[value.replace("_", " ")]
        )
    elif name == "lora" and (value == "none" or value in services.info.loras):
        settings = await store.update_member_settings(
            user_id, guild_id, lora=None if value == "none" else value
        )
    elif name == "version" and value in versions_for(services):
        settings = await store.update_member_settings(user_id, guild_id, version=value)
    elif name == "stealth" and guild is not None and guild.allow_stealth:
        settings = await store.update_member_settings(user_id, guild_id, stealth=not current.stealth)
    else:
        await refuse(interaction, f"`{value}` is not a choice for {name} any more; run /settings again.")
        return
    await interaction.response.edit_message(
        content=settings_text(settings, services, guild), view=settings_view(settings, services, guild)
    )


class SettingsItem:
    """What the items of the /settings message share (a mixin of `DynamicItem`, which takes its
    template only on a concrete class): each names the setting it changes, is rebuilt from its
    custom id after a restart, and applies the member's choice when used."""

    name: str

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(**match.groupdict())

    def chosen(self, interaction: discord.Interaction) -> str | None:
        """The value the member chose."""
        raise NotImplementedError

    async def callback(self, interaction: discord.Interaction) -> None:
        await apply_choice(interaction, self.name, self.chosen(interaction))


class SettingsButton(
    SettingsItem,
    discord.ui.DynamicItem[discord.ui.Button],
    template=PREFIX + r":(?P<name>[a-z]+)(?::(?P<value>[a-z_]+))?",
):
    """A toggle or a choice on the /settings message."""

    def __init__(
        self,
        name: str,
        value: str | None,
        label: str = "",
        style: discord.ButtonStyle = OFF,
        *,
        row: int | None = None,
    ) -> None:
        custom_id = f"{PREFIX}:{name}" + (f":{value}" if value else "")
        super().__init__(discord.ui.Button(label=label or name, style=style, custom_id=custom_id, row=row))
        self.name, self.value = name, value

    def chosen(self, interaction: discord.Interaction) -> str | None:
        return self.value


class SettingsSelect(
    SettingsItem,
    discord.ui.DynamicItem[discord.ui.Select],
    template=PREFIX + r"-select:(?P<name>[a-z]+)",
):
    """A choice among presets on the /settings message (the model, the stylize preset)."""

    def __init__(
        self,
        name: str,
        options: list[discord.SelectOption] | None = None,
        placeholder: str = "",
        *,
        row: int | None = None,
    ) -> None:
        select: discord.ui.Select = discord.ui.Select(
            custom_id=f"{PREFIX}-select:{name}",
            options=options or [discord.SelectOption(label="-")],
            placeholder=placeholder or None,
            row=row,
        )
        super().__init__(select)
        self.name = name

    def chosen(self, interaction: discord.Interaction) -> str | None:
        values = cast(dict[str, Any], interaction.data or {}).get("values") or []
        return str(values[0]) if values else None
