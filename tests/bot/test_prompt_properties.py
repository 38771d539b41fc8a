"""Properties: nothing a user types crashes the parser, and the canonical form reads back equal."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.prompt import MAX_PERMUTATIONS, Prompt, PromptError, expand_permutations, parse_prompt

T = TypeVar("T")

_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that exercise every rule, mixed with arbitrary text so the grammar's edges get hit.
_PIECES = st.sampled_from(
    [
        "cat", "a red barn", "  ", "\n", "\t", ",", ", ", ":", "::", "::2", "::-.5", "::0", "::-1", "::1.",
        "::99999", "-", "--", "—", "---", "--ar", "—ar", "--aspect", "16:9", "1:5", "0:1", "3:2", "--seed",
        "42", "-1", "4294967296", "99999999999999999999999", "--no", "--NO", "--c", "--chaos", "--s",
        "--stylize", "--q", ".25", ".75", "1e5", "nan", "--w", "--weird", "--stop", "10", "--r", "--repeat",
        "--tile", "--style", "raw", "--v", "--version", "sdxl", "5.2", "--iw", "1.5", "--sed", "--niji",
        "--ar16:9", "{", "}", "{a, b}", "\\,", "\\{", "\\", "https://e.example/a.png",
        "<https://e.example/b.jpg>", "http://[::1/a.png", "https://e.example/page", "½", "٣", "🙂",
    ]
)  # fmt: skip
_PROMPTISH = st.lists(_PIECES | st.text(max_size=8), max_size=24).map(" ".join) | st.lists(
    _PIECES, max_size=24
).map("".join)
_ANY_TEXT = st.text(max_size=200) | _PROMPTISH


def _or_refused(parse: Callable[[str], T], text: str) -> T | None:
    """`parse(text)`, or None when it refused the text with a `PromptError`, which always has a
    message for the user: nothing a user types may crash it another way."""
    try:
        return parse(text)
    except PromptError as error:
        assert str(error)
        return None


def _check_round_trip(p: Prompt, has_image: bool = False) -> None:
    again = parse_prompt(str(p), has_image=has_image)
    assert again == p
    assert str(again) == str(p)


@_SETTINGS
@given(_ANY_TEXT)
def test_any_text_parses_and_expands_or_raises_prompt_error(text: str) -> None:
    p = _or_refused(parse_prompt, text)
    if p is not None:
        assert p.text and p.text == " ".join(p.text.split())
        weights = [w for _, w in p.normalized_segments]
        assert math.isclose(sum(weights), 1.0, abs_tol=1e-9 * max(1.0, sum(map(abs, weights))))
        _check_round_trip(p)
    # the same text through `{a, b}` permutations: each expansion parses or is refused, never crashes
    prompts = _or_refused(expand_permutations, text)
    if prompts is not None:
        assert 1 <= len(prompts) <= MAX_PERMUTATIONS
        for prompt in prompts:
            if (expanded := _or_refused(parse_prompt, prompt)) is not None:
                _check_round_trip(expanded)


_WORDS = st.text(alphabet="abcdefghij xyz,.'", min_size=1, max_size=30).filter(lambda s: s.strip())


@st.composite
def _valid_prompts(draw: st.DrawFn) -> tuple[str, dict[str, object]]:
    """A prompt string built from in-range values, and the fields it must parse to."""
    words = " ".join(draw(_WORDS).split())
    expected: dict[str, object] = {"text": words}
    parts = [words]
    if draw(st.booleans()):
        w, h = draw(st.integers(1, 50)), draw(st.integers(1, 50))
        if w <= 4 * h and h <= 4 * w:
            parts.append(f"--ar {w}:{h}")
            g = math.gcd(w, h)
            expected["aspect"] = (w // g, h // g)
    for names, field, low, high in [
        (["--seed"], "seed", 0, 4_294_967_295),
        (["--chaos", "--c"], "chaos", 0, 100),
        (["--stylize", "--s"], "stylize", 0, 1000),
        (["--weird", "--w"], "weird", 0, 3000),
        (["--stop"], "stop", 10, 100),
        (["--repeat", "--r"], "repeat", 1, 40),
    ]:
        if draw(st.booleans()):
            value = draw(st.integers(low, high))
            parts.append(f"{draw(st.sampled_from(names))} {value}")
            expected[field] = value
    if draw(st.booleans()):
        iw = draw(st.decimals(0, 3, places=3))
        parts.append(f"--iw {iw}")
        expected["image_weight"] = float(iw)
    if draw(st.booleans()):
        terms = draw(
            st.lists(st.text(alphabet="abc xyz", min_size=1).filter(str.strip), min_size=1, max_size=4)
        )
        parts.append("--no " + ", ".join(terms))
        expected["negative"] = [" ".join(t.split()) for t in terms]
    if draw(st.booleans()):
        parts.append("--tile")
        expected["tile"] = True
    tail = draw(st.permutations(parts[1:]))  # parameters come in any order
    separator = draw(st.sampled_from([" ", "  ", "\n"]))
    return separator.join([parts[0], *tail]), expected


@settings(_SETTINGS, max_examples=150)
@given(_valid_prompts())
def test_in_range_values_read_back_exactly(case: tuple[str, dict[str, object]]) -> None:
    text, expected = case
    has_image = "image_weight" in expected  # `--iw` needs an image; an attached one here
    p = parse_prompt(text, has_image=has_image)
    for field, value in expected.items():
        assert getattr(p, field) == value, field
    _check_round_trip(p, has_image)
