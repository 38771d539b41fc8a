"""The parsed prompt: `Prompt`, `PromptError` and the length limits every reading checks.

`str(prompt)` is the canonical form that `parse_prompt` (bot/prompt/parser.py) reads back to an
equal `Prompt`; `to_dict`/`from_dict` are how a job row keeps the prompt it was accepted with.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from fractions import Fraction
from typing import Any

MAX_PROMPT_LENGTH = 6000
# What is typed may be longer than the canonical form it reads as (`{a, b}` templates, extra
# spaces), so the limit above is checked on the canonical form; this bound only keeps a pasted
# novel from costing parser time before that check.
MAX_INPUT_LENGTH = 4 * MAX_PROMPT_LENGTH


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
    speed: str | None = None  # --fast, --relax or --turbo; None: the member's /settings mode
    lora: str | None = None  # --lora NAME or NAME:WEIGHT (an installed LoRA style)
    style_ref: str | None = None  # --sref URL: a style reference picture (IP-Adapter)
    style_weight: int | None = None  # --sw 0-1000 (default 100)
    omni_ref: str | None = None  # --oref URL: an omni reference picture (IP-Adapter)
    omni_weight: int | None = None  # --ow 1-1000 (default 100)

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
            raise PromptError(weights_sum_message(total))
        return [(text, float(w / total)) for (text, _), w in zip(self.segments, exact, strict=True)]

    @property
    def parameters(self) -> str:
        """The non-default parameters in canonical spelling, e.g. `--ar 16:9 --seed 42`: one
        `_SPELLING` entry each, in its order, left out while the field has its default."""
        return " ".join(
            spell(value) for name, spell in _SPELLING if (value := getattr(self, name)) != _DEFAULTS[name]
        )

    def __str__(self) -> str:
        return " ".join(part for part in (*self.image_urls, self.text, self.parameters) if part)

    @property
    def lora_choice(self) -> tuple[str, float] | None:
        """`--lora` as (name, weight), the weight 1 when none was given."""
        if self.lora is None:
            return None
        name, _, weight = self.lora.partition(":")
        return name, float(weight) if weight else 1.0

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


# How each parameter is written back, in canonical order (a field at its default is not shown).
_SPELLING: tuple[tuple[str, Callable[[Any], str]], ...] = (
    ("aspect", lambda aspect: f"--ar {aspect[0]}:{aspect[1]}"),
    ("chaos", "--chaos {}".format),
    ("image_weight", lambda weight: f"--iw {format_number(weight)}"),
    ("lora", "--lora {}".format),
    ("negative", lambda terms: "--no " + ", ".join(terms)),
    ("omni_ref", "--oref {}".format),
    ("omni_weight", "--ow {}".format),
    ("quality", lambda quality: f"--quality {format_number(quality)}"),
    ("repeat", "--repeat {}".format),
    ("seed", "--seed {}".format),
    ("style_ref", "--sref {}".format),
    ("style_weight", "--sw {}".format),
    ("stop", "--stop {}".format),
    ("style", "--style {}".format),
    ("stylize", "--stylize {}".format),
    ("tile", lambda _: "--tile"),
    ("version", "--v {}".format),
    ("weird", "--weird {}".format),
    ("speed", "--{}".format),
)
_DEFAULTS: dict[str, Any] = {
    f.name: f.default if f.default_factory is MISSING else f.default_factory() for f in fields(Prompt)
}


def format_number(value: float | int) -> str:
    """A number as a person would type it: `2`, `0.5`, `0.00001` (never `1e-05`)."""
    if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def weights_sum_message(total: Fraction) -> str:
    shown = format_number(float(total))
    return (
        f"The `::` weights add up to {shown}, but they must add up to more than 0. "
        "Give the main part more weight, e.g. `hot dog::2 animal::-1`."
    )


def check_input_length(text: str) -> None:
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
