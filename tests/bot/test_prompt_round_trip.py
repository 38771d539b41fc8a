"""The prompt that was validated is the prompt that runs (issue 12, part 2).

Every accepted prompt reads back equal from its canonical form, limits hold on that form, a glued
marker is a parameter, and a job row keeps the prompt as it was parsed at submission.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.prompt import MAX_PROMPT_LENGTH, Prompt, PromptError, parse_prompt

# Pieces that glue markers, commas and words together the ways that used to slip through.
_GLUE = st.sampled_from(
    [
        "a", "cat", "b,", ",", ",,", "b,--ar", ",--ar", "2:1", "16:9", "--no", "—no", "cat—ar", "x—no",
        "b,--x", "well--known", "a--b", ";--seed", "7", "(--tile)", "--tile", "—tile", "--iw", "1",
        "https://e.example/a.png", "::2", "a::", "--seed", "—", "--", "b,—ar", "'--c", "30", "--style",
        "raw", "—v", "6", "x,,y", "\u3000", "\u00a0", "é", "--q", ".5",
    ]
)  # fmt: skip
_GLUED_PROMPTS = st.lists(_GLUE, min_size=1, max_size=20).map(" ".join) | st.lists(
    _GLUE, min_size=1, max_size=12
).map("".join)
_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_SETTINGS
@given(_GLUED_PROMPTS, st.booleans())
@example("a --no b,--ar 2:1", False)
@example("a --no b,,c --no d", False)
@example("a cat—ar 16:9", False)
@example("owl --iw 1", True)
def test_every_accepted_prompt_reads_back_equal_from_its_canonical_form(text: str, has_image: bool) -> None:
    try:
        p = parse_prompt(text, has_image=has_image)
    except PromptError as error:
        assert str(error)
        return
    canonical = str(p)
    assert len(canonical) <= MAX_PROMPT_LENGTH
    assert parse_prompt(canonical, has_image=has_image) == p
    assert Prompt.from_dict(p.to_dict()) == p


def test_a_marker_after_a_comma_in_no_terms_is_a_parameter_not_a_term() -> None:
    p = parse_prompt("a --no b,--ar 2:1")
    assert p.negative == ["b"] and p.aspect == (2, 1)
    assert parse_prompt(str(p)) == p


def test_an_unknown_parameter_glued_to_no_terms_is_refused_at_parse_time() -> None:
    with pytest.raises(PromptError, match="`--x` is not a parameter"):
        parse_prompt("a --no b,--x")


def test_an_em_dash_right_after_a_word_starts_a_parameter() -> None:
    p = parse_prompt("a cat—ar 16:9")
    assert p.text == "a cat" and p.aspect == (16, 9)


def test_a_double_dash_inside_a_word_stays_a_word() -> None:
    assert parse_prompt("a well--known cat").text == "a well--known cat"


def test_the_length_limit_is_on_the_stored_form_and_names_the_limit() -> None:
    # 2,990 terms written `x,x,…` are 5,990 characters typed, but `x, x, …` as stored.
    typed = "a --no " + ",".join(["x"] * 2990)
    assert len(typed) <= MAX_PROMPT_LENGTH
    with pytest.raises(PromptError, match="6,000") as error:
        parse_prompt(typed)
    assert "as stored" in str(error.value)
    # What fits as stored is accepted, and stays within the limit when stored.
    fits = parse_prompt("a --no " + ",".join(["x"] * 1990))
    assert len(str(fits)) <= MAX_PROMPT_LENGTH


@pytest.mark.parametrize(
    "name", ["p", "draft", "exp", "sv", "profile", "niji"]
)  # --sref/--oref: test_prompt_tools.py
def test_midjourney_only_parameters_get_the_midjourney_only_message(name: str) -> None:
    with pytest.raises(PromptError, match="Midjourney-only") as error:
        parse_prompt(f"a cat --{name} 1" if name not in ("draft", "p") else f"a cat --{name}")
    assert f"`--{name}`" in str(error.value)


def test_iw_without_an_image_is_refused_at_parse_time_with_the_reason() -> None:
    with pytest.raises(PromptError, match="no image") as error:
        parse_prompt("a cat --iw 2")
    assert error.value.parameter == "image_weight"
    assert parse_prompt("https://e.example/a.png a cat --iw 2").image_weight == 2.0
    assert parse_prompt("a cat --iw 2", has_image=True).image_weight == 2.0
