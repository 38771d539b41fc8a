"""A member's /settings as prompt defaults: what each choice means, and how it joins a prompt.

The order of precedence, most specific first: what the prompt says, then the member's
`/prefer suffix`, then their /settings. Settings are written as parameters and added to the
suffix (where the suffix does not set them already), so the one merging rule of
`prompts_with_suffix` (the prompt's own parameter wins) covers both.
"""

from __future__ import annotations

from typing import Any

from bot.core.options import expand_options
from bot.core.ports import JobStore
from bot.core.rules import prompts_with_suffix
from bot.prompt import DEFAULTS, Prompt, PromptError, parse_prompt
from storage.models import MemberSettings

# Midjourney's /settings stylize presets and the `--stylize` each stands for.
STYLIZE_PRESETS: dict[str, int] = {"low": 50, "med": 100, "high": 250, "very high": 750}


def stylize_preset(value: int | None) -> str:
    """The preset name of a stored stylize value ("med" when unset or not a preset's)."""
    for name, number in STYLIZE_PRESETS.items():
        if number == (value if value is not None else DEFAULTS["stylize"]):
            return name
    return "med"


def setting_parameters(settings: MemberSettings | None) -> dict[str, Any]:
    """The prompt fields the member's settings set (only those away from the default)."""
    if settings is None:
        return {}
    chosen: dict[str, Any] = {}
    if settings.stylize is not None and settings.stylize != DEFAULTS["stylize"]:
        chosen["stylize"] = settings.stylize
    if settings.raw:
        chosen["style"] = "raw"
    if settings.version:
        chosen["version"] = settings.version
    if settings.lora:
        chosen["lora"] = settings.lora
    return chosen


def suffix_with_settings(suffix: str, settings: MemberSettings | None) -> str:
    """The `/prefer suffix` with the member's settings added as parameters the suffix leaves unset."""
    extra = []
    for name, value in setting_parameters(settings).items():
        spelled = Prompt(text="x", **{name: value}).parameters
        if not _suffix_sets(suffix, name, spelled):
            extra.append(spelled)
    return " ".join(part for part in (suffix, *extra) if part)


async def member_prompts(
    store: JobStore, user_id: int, guild_id: int | None, text: str, *, has_image: bool = False
) -> tuple[list[Prompt], MemberSettings]:
    """The prompts `text` makes for this member: their `/prefer option`s expanded, their
    `/prefer suffix` and /settings added, permutations expanded (and their settings, for the
    caller's other choices). One planner for the job service and for counting jobs ahead."""
    prefs = await store.user_prefs(user_id)
    member = await store.member_settings(user_id, guild_id)
    options = await store.prompt_options(user_id)
    own_suffix = expand_options((getattr(prefs, "suffix", "") or "").strip(), options)
    suffix = suffix_with_settings(own_suffix, member)
    return prompts_with_suffix(expand_options(text, options), suffix, has_image=has_image), member


def _suffix_sets(suffix: str, name: str, spelled: str) -> bool:
    """Whether the suffix gives parameter `name` itself (the parser calls it "given twice")."""
    if not suffix:
        return False
    try:
        parse_prompt(f"x {suffix} {spelled}")
    except PromptError as exc:
        return exc.parameter == name
    return False


__all__ = [
    "STYLIZE_PRESETS",
    "member_prompts",
    "setting_parameters",
    "stylize_preset",
    "suffix_with_settings",
]
