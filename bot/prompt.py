"""The Midjourney prompt language: what a member types after `/imagine`, read into a `Prompt`.

    https://example.com/ref.png a lighthouse at dusk::2 storm::-0.5 --ar 16:9 --seed 42 --no people

reads as: image URLs first, then the description (with `::` multi-prompt weights), then the
parameters. `{a, b}` permutations are expanded into several prompt strings *before* parsing, by
`expand_permutations`. Every mistake raises `PromptError`, whose message is written for the person
who typed the prompt: it names the parameter, the allowed range and, for a misspelt parameter, the
closest known one. Nothing here imports torch, diffusers or discord: the bot parses prompts on its
event loop and must stay light.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import urlsplit

from engine.api import dimensions_for  # the engine warms up the same sizes that `--ar` asks for

__all__ = [
    "DEFAULTS",
    "MAX_INPUT_LENGTH",
    "MAX_PERMUTATIONS",
    "MAX_PROMPT_LENGTH",
    "PARAMETER_FIELDS",
    "Prompt",
    "PromptError",
    "check_prompt_length",
    "dimensions_for",
    "expand_permutations",
    "parse_prompt",
]

MAX_PROMPT_LENGTH = 6000
# What is typed may be longer than the canonical form it reads as (`{a, b}` templates, extra
# spaces), so the limit above is checked on the canonical form; this bound only keeps a pasted
# novel from costing parser time before that check.
MAX_INPUT_LENGTH = 4 * MAX_PROMPT_LENGTH
MAX_PERMUTATIONS = 40
# `{…}` groups nest at most this deep; a deeper nesting is never a real prompt, and the limit keeps
# the expansion's recursion shallow whatever a user pastes.
MAX_BRACE_DEPTH = 16
# `::` weights are kept finite and readable; Midjourney's own examples stay within a few hundred.
MAX_WEIGHT = 10_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")


QUALITY_STEPS = (0.25, 0.5, 1.0, 2.0)


class PromptError(ValueError):
    """A prompt that cannot be run, with a message the person who typed it can act on.

    `parameter` names the offending parameter (its canonical name, e.g. "aspect") when there is one.
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


# ---------------------------------------------------------------------------------------------
# The parsed prompt
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """One prompt, parsed. Equal prompts compare equal field by field.

    `text` is the description as typed (whitespace folded, `::` weights included); `segments` are
    the `::` parts with their raw weights, `normalized_segments` the same divided by their sum.
    `negative` holds the `--no` terms; the engine decides how strongly to push away from them
    (Midjourney treats `--no x` as `x::-0.5`). `str(prompt)` is the canonical form, which
    `parse_prompt` reads back to an equal `Prompt`.
    """

    text: str
    segments: list[tuple[str, float]] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)
    image_urls: list[str] = field(default_factory=list)
    aspect: tuple[int, int] = (1, 1)
    seed: int | None = None
    chaos: int = 0
    stylize: int = 100
    quality: float = 1.0
    weird: int = 0
    stop: int = 100
    repeat: int = 1
    tile: bool = False
    style: str | None = None
    version: str | None = None
    image_weight: float | None = None

    def __post_init__(self) -> None:
        # A prompt built in code (`Prompt("a cat")`) gets the one segment a parsed one would have.
        if not self.segments:
            object.__setattr__(self, "segments", [(self.text, 1.0)])

    def __hash__(self) -> int:  # the list fields would make the generated hash fail
        return hash(str(self))

    @property
    def normalized_segments(self) -> list[tuple[str, float]]:
        """The `::` segments with weights divided by their sum (Midjourney's normalisation).

        `hot:: dog`, `hot::1 dog` and `hot::100 dog::100` all give `[("hot", .5), ("dog", .5)]`.
        The sum is exact (fractions of the weights as typed), so `a::.1 b::.2 c::-.3` is a zero
        sum and was refused by the parser rather than blown up by float rounding.
        """
        if len(self.segments) == 1 and self.segments[0][1] > 0:  # the common case, no arithmetic
            return [(self.segments[0][0], 1.0)]
        exact = [Fraction(repr(weight)) for _, weight in self.segments]
        total = sum(exact, Fraction(0))
        if total <= 0:
            raise PromptError(_weights_sum_message(total))
        return [(text, float(w / total)) for (text, _), w in zip(self.segments, exact, strict=True)]

    @property
    def parameters(self) -> str:
        """The non-default parameters in canonical spelling, e.g. `--ar 16:9 --seed 42`."""
        out: list[str] = []
        if self.aspect != (1, 1):
            out.append(f"--ar {self.aspect[0]}:{self.aspect[1]}")
        if self.chaos != 0:
            out.append(f"--chaos {self.chaos}")
        if self.image_weight is not None:
            out.append(f"--iw {_format_number(self.image_weight)}")
        if self.negative:
            out.append("--no " + ", ".join(self.negative))
        if self.quality != 1.0:
            out.append(f"--quality {_format_number(self.quality)}")
        if self.repeat != 1:
            out.append(f"--repeat {self.repeat}")
        if self.seed is not None:
            out.append(f"--seed {self.seed}")
        if self.stop != 100:
            out.append(f"--stop {self.stop}")
        if self.style is not None:
            out.append(f"--style {self.style}")
        if self.stylize != 100:
            out.append(f"--stylize {self.stylize}")
        if self.tile:
            out.append("--tile")
        if self.version is not None:
            out.append(f"--v {self.version}")
        if self.weird != 0:
            out.append(f"--weird {self.weird}")
        return " ".join(out)

    def __str__(self) -> str:
        return " ".join(part for part in (*self.image_urls, self.text, self.parameters) if part)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-ready values: how a job row keeps the prompt it was accepted with,
        so the job runs on exactly that prompt and never on a second reading of its text."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["segments"] = [[text, weight] for text, weight in self.segments]
        data["aspect"] = list(self.aspect)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Prompt:
        """The prompt `to_dict` kept; unknown keys (from a newer version) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        values["segments"] = [(str(text), float(weight)) for text, weight in values.get("segments", [])]
        if "aspect" in values:
            values["aspect"] = (int(values["aspect"][0]), int(values["aspect"][1]))
        return cls(**values)


# ---------------------------------------------------------------------------------------------
# Parameters: the table every spelling, range and default comes from
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Param:
    field: str  # the Prompt field it sets
    names: tuple[str, ...]  # accepted spellings without the dashes; the first is shown in help
    kind: str  # int, float, quality, aspect, flag, terms, token
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
    "niji", "hd", "test", "testp", "creative", "uplight", "upbeta", "upanime", "video", "sref", "cref",
    "sw", "cw", "sv", "fast", "relax", "turbo", "p", "personalize", "profile", "exp", "draft", "raw",
    "motion", "loop", "oref", "ow", "end", "bs", "stealth", "public",
})
# fmt: on

_MARKER = re.compile(r"(?:--|—)([A-Za-z]\S*)")
# A marker glued to what comes before it still starts a parameter, as in Midjourney: an em dash
# after anything (`a cat—ar 16:9`), and `--` after punctuation (`--no b,--ar 2:1`). Without this
# such a marker would hide inside a value and come out as a parameter once the prompt is printed
# with its canonical spaces. `--` right after a letter or digit (`well--known`) stays a word.
_GLUED_MARKER = re.compile(r"(?<=\S)—(?=[A-Za-z])|(?<=[^\s\w-])--(?=[A-Za-z])")
_INT = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_ASPECT = re.compile(r"([0-9]+):([0-9]+)")
_TOKEN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# A `::` weight sits right after the colons and ends at a space or the end of the text.
_WEIGHT = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?=\s|\Z)")


def _flag(name: str) -> str:
    return f"`--{name}`"


def _range_text(p: _Param) -> str:
    if p.kind == "aspect":
        return "between 1:4 and 4:1"
    if p.kind == "quality":
        return ".25, .5, 1 or 2"
    return f"from {_format_number(p.low)} to {_format_number(p.high)}"  # type: ignore[arg-type]


def _format_number(value: float | int) -> str:
    """A number as a person would type it: `2`, `0.5`, `0.00001` (never `1e-05`)."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return format(Decimal(repr(value)), "f")


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
    if p.kind == "flag":
        if values:
            raise PromptError(
                f"{flag} takes no value, but `{' '.join(values)}` follows it. "
                "Parameters go at the end of the prompt, after the description.",
                p.field,
            )
        return True
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


def _parse_parameters(tokens: list[str]) -> dict[str, Any]:
    """Read `--name value…` groups; `tokens[0]` is always a parameter marker."""
    groups: list[tuple[str, list[str]]] = []
    for token in tokens:
        marker = _MARKER.match(token) if token[0] in "-—" else None
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
            same = "" if earlier.lower() == name else f" (as {_flag(earlier)} and {_flag(typed)})"
            raise PromptError(f"{_flag(p.names[0])} is given twice{same}; keep one.", p.field)
        fields[p.field] = value
        typed_for[p.field] = typed
    return fields


# ---------------------------------------------------------------------------------------------
# Image URLs and `::` segments
# ---------------------------------------------------------------------------------------------


def _image_url(token: str) -> str | None:
    """The URL if `token` is a direct image link (`<…>` as Discord writes it is accepted)."""
    if token.startswith("<") and token.endswith(">"):
        token = token[1:-1]
    if not token.startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(token)
    except ValueError:  # e.g. a malformed IPv6 host: not a URL we can fetch, so plain text
        return None
    if not parts.netloc or not parts.path.lower().endswith(IMAGE_EXTENSIONS):
        return None
    return token


def _weights_sum_message(total: Fraction) -> str:
    shown = _format_number(float(total))
    return (
        f"The `::` weights add up to {shown}, but they must add up to more than 0. "
        "Give the main part more weight, e.g. `hot dog::2 animal::-1`."
    )


def _parse_segments(body: str) -> list[tuple[str, float]]:
    """Split `a::2 b:: c::-.5` into segments; a weight right after `::` belongs to the part before."""
    if "::" not in body:
        return [(body, 1.0)]
    parts = body.split("::")
    current: str | None = parts[0].strip()
    if not current:
        raise PromptError("The prompt starts with `::`; put the words for that part before the `::`.")
    texts: list[str] = []
    weights: list[str | None] = []
    last = len(parts) - 1
    for index, part in enumerate(parts[1:], start=1):
        match = _WEIGHT.match(part)
        weight = match[0] if match else None
        rest = part[match.end() :].strip() if match else part.strip()
        assert current is not None
        texts.append(current)
        weights.append(weight)
        if not rest and index != last:
            raise PromptError(
                f"Part {index + 1} of the `::` multi-prompt is empty; put some words between the `::`s."
            )
        current = rest or None
    if current is not None:
        texts.append(current)
        weights.append(None)

    values: list[float] = []
    total = Fraction(0)
    for text, weight in zip(texts, weights, strict=True):
        value = 1.0 if weight is None else float(weight)
        if abs(value) > MAX_WEIGHT:
            raise PromptError(
                f"The `::` weight {weight} of `{text}` is too large; weights go from "
                f"-{MAX_WEIGHT:,} to {MAX_WEIGHT:,}."
            )
        values.append(value)
        total += Fraction(repr(value))
    if total <= 0:
        raise PromptError(_weights_sum_message(total))
    return list(zip(texts, values, strict=True))


# ---------------------------------------------------------------------------------------------
# The public functions
# ---------------------------------------------------------------------------------------------


def _check_input_length(text: str) -> None:
    if len(text) > MAX_INPUT_LENGTH:
        raise PromptError(
            f"The prompt is {len(text):,} characters long; the limit is {MAX_PROMPT_LENGTH:,} "
            "(counted on the prompt as it is stored, parameters included)."
        )


def check_prompt_length(prompt: Prompt) -> None:
    """The length limit, on the canonical form: what is stored and what the job reads.

    Checking what was typed instead would let `--no a,b,c` (stored as `--no a, b, c`) pass at
    submission and grow past the limit in the row.
    """
    length = len(str(prompt))
    if length > MAX_PROMPT_LENGTH:
        raise PromptError(
            f"The prompt is {length:,} characters long as stored (parameters in their full spelling); "
            f"the limit is {MAX_PROMPT_LENGTH:,}."
        )


def parse_prompt(text: str, *, has_image: bool = False) -> Prompt:
    """Read one prompt (after permutations were expanded) into a `Prompt`.

    Image URLs lead, the description follows, and the first `--name` (or `—name`) starts the
    parameters, which run to the end. `{` and `}` are plain characters here: call
    `expand_permutations` first to get one string per `{a, b}` choice. `has_image` says an image
    comes with the prompt another way (a Discord attachment), which is what `--iw` weighs.

    What is accepted reads back equal from its canonical form: `parse_prompt(str(p)) == p`.
    """
    _check_input_length(text)
    tokens = _GLUED_MARKER.sub(" --", text).split()
    if not tokens:
        raise PromptError("The prompt is empty: describe what you want to see, e.g. `a lighthouse at dusk`.")
    count = len(tokens)
    start = 0
    urls: list[str] = []
    while start < count and (url := _image_url(tokens[start])) is not None:
        urls.append(url)
        start += 1
    end = start
    while end < count:
        token = tokens[end]
        if token[0] in "-—" and _MARKER.match(token):
            break
        end += 1
    fields = _parse_parameters(tokens[end:]) if end < count else {}
    if end == start:
        where = "after the image URL" if urls else "before the parameters" if fields else ""
        raise PromptError(
            f"The prompt has no description: add words {where} that say what you want to see."
            if where
            else "The prompt is empty: describe what you want to see."
        )
    if fields.get("image_weight") is not None and not urls and not has_image:
        raise PromptError(
            "`--iw` sets how much an image prompt counts, but this prompt has no image: put an image "
            "URL at the front of the prompt or attach an image, or leave `--iw` out.",
            "image_weight",
        )
    body = " ".join(tokens[start:end])
    prompt = Prompt(text=body, segments=_parse_segments(body), image_urls=urls, **fields)
    check_prompt_length(prompt)
    return prompt


# --- permutations ---------------------------------------------------------------------------

# A parsed template: a sequence of literal strings and groups; a group is a list of sequences.
_Seq = list["str | _Group"]


class _Group(list[Any]):  # list[_Seq]
    pass


_ESCAPABLE = ",{}"


def _parse_template(text: str) -> _Seq:
    """Parse `{…}` groups without recursion (so no input can exhaust the stack)."""
    root: _Seq = []
    stack: list[tuple[_Group, _Seq]] = []  # (the open group, its current option)
    sequence = root
    literal: list[str] = []
    index = 0
    length = len(text)
    open_at: list[int] = []
    too_deep = False
    while index < length:
        char = text[index]
        if char == "\\" and index + 1 < length and text[index + 1] in _ESCAPABLE:
            literal.append(text[index + 1])
            index += 2
            continue
        if char == "{":
            # Too deep is reported after the scan, so an unclosed `{` gets the more useful message.
            too_deep = too_deep or len(stack) >= MAX_BRACE_DEPTH
            sequence.append("".join(literal))
            literal = []
            group = _Group()
            option: _Seq = []
            group.append(option)
            sequence.append(group)
            stack.append((group, sequence))
            open_at.append(index)
            sequence = option
        elif char == "," and stack:
            sequence.append("".join(literal))
            literal = []
            option = []
            stack[-1][0].append(option)
            sequence = option
        elif char == "}":
            if not stack:
                raise PromptError(
                    f"There is a `}}` without a matching `{{` (character {index + 1}). "
                    "Write `\\}` for a literal brace."
                )
            sequence.append("".join(literal))
            literal = []
            _, sequence = stack.pop()
            open_at.pop()
        else:
            literal.append(char)
        index += 1
    if stack:
        raise PromptError(
            f"The `{{` at character {open_at[0] + 1} is never closed; add a `}}` (or write `\\{{` for a "
            "literal brace)."
        )
    if too_deep:
        raise PromptError(f"The `{{…}}` groups are nested more than {MAX_BRACE_DEPTH} deep.")
    sequence.append("".join(literal))
    return root


def _count(sequence: _Seq) -> int:
    total = 1
    for item in sequence:
        if isinstance(item, _Group):
            total *= sum(_count(option) for option in item)
    return total


def _expand(sequence: _Seq) -> list[str]:
    results = [""]
    for item in sequence:
        if isinstance(item, _Group):
            choices = [choice.strip() for option in item for choice in _expand(option)]
        else:
            choices = [item]
        results = [head + choice for head in results for choice in choices]
    return results


def expand_permutations(text: str) -> list[str]:
    """Expand `{a, b}` groups into one prompt string per combination, in order.

    Groups nest (`{a, b {c, d}}` is three prompts), several groups multiply, and groups work
    inside parameters too (`--ar {1:1, 16:9}`). `\\,`, `\\{` and `\\}` are literal characters.
    More than `MAX_PERMUTATIONS` results is an error that says how many there would be.
    """
    _check_input_length(text)
    if not text.strip():
        raise PromptError("The prompt is empty: describe what you want to see, e.g. `a lighthouse at dusk`.")
    if "{" not in text and "}" not in text and "\\" not in text:
        return [" ".join(text.split())]
    template = _parse_template(text)
    count = _count(template)
    if count > MAX_PERMUTATIONS:
        shown = f"{count:,}" if count < 10**9 else "over a billion"
        raise PromptError(
            f"The `{{…}}` permutations make {shown} prompts; the limit is {MAX_PERMUTATIONS}. "
            "Use fewer options or fewer groups."
        )
    return [" ".join(result.split()) for result in _expand(template)]


# Sizes for `--ar`: `dimensions_for` lives in engine.api (imported above) and is re-exported here.


def unknown_words(prompt: Prompt, vocabulary: Sequence[str]) -> list[str]:
    """The words of the prompt's text and `--no` terms that a closed-vocabulary model never learned.

    Empty when the model's vocabulary is open (`vocabulary` empty). One-letter words are never
    reported: every tokenizer reads them. The prompt still runs; the front end says which words
    the model draws without.
    """
    if not vocabulary:
        return []
    known = set(vocabulary)
    texts = [text for text, _ in prompt.segments] + list(prompt.negative)
    words = re.findall(r"[^\W\d_]+", " ".join(texts).lower())
    return [w for w in dict.fromkeys(words) if len(w) > 1 and w not in known]
