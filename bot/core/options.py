"""`/prefer option`: a member's named parameter bundles. `--name` in their prompt stands for them.

    /prefer option set cinematic --ar 21:9 --stylize 250
    /imagine a harbour at dawn --cinematic    ->    a harbour at dawn --ar 21:9 --stylize 250

An option holds parameters only (words would land among the parameters, where the parser reads
them as values), may not be named like a parameter, and cannot name another option: what it
stands for is exactly what was set. A parameter the prompt gives beside the option is "given
twice", as it would be typed out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from bot.prompt import PARAMETER_NAMES, PromptError, parse_prompt

_OPTION_MARKER = re.compile(r"(?<!\S)(?:--|—)([A-Za-z0-9][\w-]*)(?=\s|$)")


def check_option(name: str, value: str) -> tuple[str, str]:
    """The option's name (lower case) and value, folded; `PromptError` says what is wrong."""
    name = name.strip().lstrip("-—").lower()
    value = " ".join(value.split())
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,31}", name):
        raise PromptError(f"an option name is 1-32 letters, digits, `_` or `-`; `{name}` is not")
    if name in PARAMETER_NAMES:
        raise PromptError(f"`--{name}` is a parameter already; give the option another name")
    if not value:
        raise PromptError(f"the option `--{name}` needs parameters, e.g. `--ar 16:9 --stylize 250`")
    try:
        parsed = parse_prompt(f"x {value}")
    except PromptError as exc:
        raise PromptError(f"the option `--{name}` does not work: {exc}", exc.parameter) from None
    if parsed.text != "x" or not value.startswith(("--", "—")):
        raise PromptError(f"the option `--{name}` may hold parameters only (starting with `--`), not words")
    return name, value


def expand_options(text: str, options: Mapping[str, str]) -> str:
    """`text` with each `--name` of the member's options replaced by what it stands for."""
    if not options:
        return text

    def replace(match: re.Match[str]) -> str:
        name = match[1].lower()
        if name in PARAMETER_NAMES or name not in options:
            return match[0]
        return options[name]

    return _OPTION_MARKER.sub(replace, text)


__all__ = ["check_option", "expand_options"]
