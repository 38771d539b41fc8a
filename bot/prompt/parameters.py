"""The `--parameter`s: the table every spelling, range and default comes from, and their reading.

A mistake raises `PromptError` naming the parameter, its allowed range and, for a misspelt one, the
closest known parameter (or a pointed hint for words carried over from other tools).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import MISSING, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from bot.prompt.parsed import Prompt, PromptError, format_number

QUALITY_STEPS = (0.25, 0.5, 1.0, 2.0)


@dataclass(frozen=True)
class _Param:
    field: str  # the Prompt field it sets
    names: tuple[str, ...]  # accepted spellings without the dashes; the first is shown in help
    kind: str  # int, float, quality, aspect, flag, terms, token, url
    low: float | None = None
    high: float | None = None
    example: str = ""


_PARAMS: tuple[_Param, ...] = (
    _Param("aspect", ("ar", "aspect"), "aspect", 1 / 4, 4, "--ar 16:9"),
    _Param("seed", ("seed",), "int", 0, 4_294_967_295, "--seed 42"),
    _Param("negative", ("no",), "terms", example="--no people, text"),
    _Param("chaos", ("chaos", "c"), "int", 0, 100, "--chaos 30"),
    _Param("stylize", ("stylize", "s"), "int", 0, 1000, "--stylize 250"),
    _Param("quality", ("quality", "q"), "quality", 0, 2, "--quality .5"),
    _Param("stop", ("stop",), "int", 10, 100, "--stop 80"),
    _Param("tile", ("tile",), "flag", example="--tile"),
    _Param("weird", ("weird", "w"), "int", 0, 3000, "--weird 250"),
    _Param("repeat", ("repeat", "r"), "int", 1, 40, "--repeat 3"),
    _Param("image_weight", ("iw",), "float", 0, 3, "--iw 1.5"),
    _Param("style", ("style",), "token", example="--style raw"),
    _Param("version", ("version", "v"), "token", example="--v sdxl"),
    _Param("speed", ("fast", "relax", "turbo"), "speed", example="--relax"),
    _Param("lora", ("lora",), "lora", 0, 2, "--lora ink:0.8"),
    _Param("style_ref", ("sref",), "url", example="--sref https://example.com/style.png"),
    _Param("style_weight", ("sw",), "int", 0, 1000, "--sw 200"),
    _Param("omni_ref", ("oref",), "url", example="--oref https://example.com/me.png"),
    _Param("omni_weight", ("ow",), "int", 1, 1000, "--ow 200"),
)
PARAMETER_FIELDS: tuple[str, ...] = tuple(p.field for p in _PARAMS)  # the fields a `--parameter` sets
# Each parameter's value when a prompt does not give it: the Prompt field's own default.
DEFAULTS: dict[str, Any] = {
    f.name: f.default_factory() if f.default is MISSING else f.default  # type: ignore[operator]
    for f in fields(Prompt)
    if f.name in PARAMETER_FIELDS
}
STYLES = ("raw",)  # --style values the engine knows; `raw` drops the preset's house style
_BY_NAME: dict[str, _Param] = {name: p for p in _PARAMS for name in p.names}
PARAMETER_NAMES = frozenset(_BY_NAME)  # every spelling a `--parameter` may take, lower case
_KNOWN = ", ".join(f"--{p.names[0]}" for p in _PARAMS)

# Words people carry over from other tools or from Midjourney features this bot does not have:
# a pointed hint beats a generic "unknown parameter".
_HINTS = {
    "neg": "Use `--no` for things to leave out, e.g. `--no people, text`.",
    "negative": "Use `--no` for things to leave out, e.g. `--no people, text`.",
    "steps": "`--quality` (.25, .5, 1 or 2) scales the number of steps.",
    "ratio": "Use `--ar W:H`, e.g. `--ar 16:9`.",
    "size": "Use `--ar W:H`, e.g. `--ar 16:9`; the size in pixels follows the model.",
}
# Midjourney's parameters up to V7 that this bot does not have (omni/style/character references,
# personalization, draft and experimental modes, video, speed modes, legacy upscalers).
# fmt: off
_MIDJOURNEY_ONLY = frozenset({
    "niji", "hd", "test", "testp", "creative", "uplight", "upbeta", "upanime", "video", "cref",
    "cw", "sv", "p", "personalize", "profile", "exp", "draft", "raw",
    "motion", "loop", "end", "bs", "stealth", "public",
})
# fmt: on

MARKER = re.compile(r"(?:--|—)([A-Za-z]\S*)")
# A marker glued to what comes before it still starts a parameter, as in Midjourney: an em dash
# after anything (`a cat—ar 16:9`), and `--` after punctuation (`--no b,--ar 2:1`). Without this
# such a marker would hide inside a value and come out as a parameter once the prompt is printed
# with its canonical spaces. `--` right after a letter or digit (`well--known`) stays a word.
GLUED_MARKER = re.compile(r"(?<=\S)—(?=[A-Za-z])|(?<=[^\s\w-])--(?=[A-Za-z])")
# A number as prompts write it, with no sign: 2, 2., 2.5 or .5 (no exponent, inf or nan).
DECIMAL = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_NAME = r"[a-z0-9][a-z0-9._-]{0,63}"  # a --style, --v or --lora name
_INT = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(rf"[+-]?{DECIMAL}")
_ASPECT = re.compile(r"([0-9]+):([0-9]+)")
_TOKEN = re.compile(_NAME)
_LORA = re.compile(rf"({_NAME})(?::([0-9]*\.?[0-9]+))?")


def _flag(name: str) -> str:
    return f"`--{name}`"


def _range_text(p: _Param) -> str:
    if p.kind == "aspect":
        return "between 1:4 and 4:1"
    if p.kind == "quality":
        return ".25, .5, 1 or 2"
    return f"from {format_number(p.low)} to {format_number(p.high)}"  # type: ignore[arg-type]


def _suggest(name: str) -> str:
    if name in _HINTS:
        return f" {_HINTS[name]}"
    if name in _MIDJOURNEY_ONLY:
        return f" It is Midjourney-only: this bot does not have it. Known parameters: {_KNOWN}."
    # `--ar16:9`: a known name glued to its value.
    for known in sorted(_BY_NAME, key=len, reverse=True):
        rest = name[len(known) :]
        if name.startswith(known) and rest and not rest[0].isalpha():
            return f" Did you mean `--{known} {rest.lstrip('=') or rest}` (with a space)?"
    close = difflib.get_close_matches(name, list(_BY_NAME), n=1, cutoff=0.6)
    if close:
        return f" Did you mean {_flag(close[0])}?"
    return f" Known parameters: {_KNOWN}."


def _parse_value(p: _Param, typed: str, values: list[str]) -> Any:
    """Turn one parameter's value tokens into the Prompt field's value, or raise PromptError."""
    flag = _flag(typed)
    if p.kind in ("flag", "speed"):
        if values:
            raise PromptError(
                f"{flag} takes no value, but `{' '.join(values)}` follows it. "
                "Parameters go at the end of the prompt, after the description.",
                p.field,
            )
        return typed.lower() if p.kind == "speed" else True  # a speed's spelling is its value
    if not values:
        raise PromptError(f"{flag} needs a value, e.g. `{p.example}`.", p.field)
    if p.kind == "terms":
        terms = [" ".join(t.split()) for t in " ".join(values).split(",")]
        terms = [t for t in terms if t]
        if not terms:
            raise PromptError(f"{flag} needs the things to leave out, e.g. `{p.example}`.", p.field)
        return terms
    if len(values) > 1:
        raise PromptError(
            f"{flag} takes one value, but got `{' '.join(values)}`. "
            "Parameters go at the end of the prompt, after the description.",
            p.field,
        )
    value = values[0]
    if p.kind == "lora":
        match = _LORA.fullmatch(value.lower())
        if not match:
            raise PromptError(
                f"{flag} takes a style's name and an optional weight from 0 to 2, e.g. `{p.example}`; "
                f"got `{value}`.",
                p.field,
            )
        if match[2] is None:
            return match[1]
        weight = float(match[2])
        if not 0 <= weight <= 2:
            raise PromptError(f"{flag}'s weight must be from 0 to 2; got `{value}`.", p.field)
        return match[1] if weight == 1 else f"{match[1]}:{format_number(weight)}"
    if p.kind == "url":
        url = value[1:-1] if value.startswith("<") and value.endswith(">") else value
        try:
            parts = urlsplit(url)
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise PromptError(
                f"{flag} takes an http(s) link to a picture, e.g. `{p.example}`; got `{value}`.", p.field
            )
        return url
    if p.kind == "token":
        token = value.lower()
        if not _TOKEN.fullmatch(token):
            raise PromptError(
                f"{flag} takes a short name of letters, digits, `.`, `_` or `-`, e.g. `{p.example}`; "
                f"got `{value}`.",
                p.field,
            )
        if p.field == "style" and token not in STYLES:
            # Only styles the engine acts on: a style that changed nothing would be silently ignored.
            raise PromptError(
                f"{flag} takes {', '.join(f'`{name}`' for name in STYLES)}; got `{value}`.", p.field
            )
        return token
    if p.kind == "aspect":
        match = _ASPECT.fullmatch(value)
        if not match:
            raise PromptError(
                f"{flag} takes whole numbers as W:H, e.g. `{p.example}`; got `{value}`.", p.field
            )
        if len(match[1]) > 6 or len(match[2]) > 6:
            raise PromptError(f"{flag} `{value}` has sides too large; use small numbers like 16:9.", p.field)
        width, height = int(match[1]), int(match[2])
        if width == 0 or height == 0:
            raise PromptError(f"{flag} needs both sides above 0; got `{value}`.", p.field)
        if not (width <= 4 * height and height <= 4 * width):
            raise PromptError(f"{flag} must be {_range_text(p)}; got `{value}`.", p.field)
        divisor = math.gcd(width, height)
        return (width // divisor, height // divisor)
    if p.kind == "int":
        if not _INT.fullmatch(value):
            raise PromptError(
                f"{flag} takes a whole number {_range_text(p)}, e.g. `{p.example}`; got `{value}`.", p.field
            )
        number = int(value) if len(value) <= 20 else (-math.inf if value[0] == "-" else math.inf)
    else:  # float, quality
        if not _NUMBER.fullmatch(value):
            raise PromptError(
                f"{flag} takes a number {_range_text(p)}, e.g. `{p.example}`; got `{value}`.", p.field
            )
        number = float(value)
    assert p.low is not None and p.high is not None
    if p.kind == "quality":
        if not 0 < number <= p.high:
            raise PromptError(
                f"{flag} must be above 0 and at most 2 (.25, .5, 1 or 2; others round); got `{value}`.",
                p.field,
            )
        # The nearest of .25/.5/1/2; a tie goes to the higher quality.
        return min(QUALITY_STEPS, key=lambda q: (abs(q - number), -q))
    if not p.low <= number <= p.high:
        raise PromptError(f"{flag} must be {_range_text(p)}; got `{value}`.", p.field)
    return number


def parse_parameters(tokens: list[str]) -> dict[str, Any]:
    """Read `--name value…` groups; `tokens[0]` is always a parameter marker."""
    groups: list[tuple[str, list[str]]] = []
    for token in tokens:
        marker = MARKER.match(token) if token[0] in "-—" else None
        if marker:
            groups.append((marker[1], []))
        else:
            groups[-1][1].append(token)
    fields: dict[str, Any] = {}
    typed_for: dict[str, str] = {}
    for typed, values in groups:
        name = typed.lower()
        p = _BY_NAME.get(name)
        if p is None:
            raise PromptError(f"{_flag(typed)} is not a parameter here.{_suggest(name)}")
        value = _parse_value(p, typed, values)
        if p.field in fields:
            if p.kind == "terms":  # `--no a --no b` reads as `--no a, b`
                fields[p.field] = fields[p.field] + value
                continue
            earlier = typed_for[p.field]
            if p.kind == "speed":
                raise PromptError(
                    f"{_flag(earlier)} and {_flag(typed)} both pick a speed; keep one.", p.field
                )
            same = "" if earlier.lower() == name else f" (as {_flag(earlier)} and {_flag(typed)})"
            raise PromptError(f"{_flag(p.names[0])} is given twice{same}; keep one.", p.field)
        fields[p.field] = value
        typed_for[p.field] = typed
    return fields
