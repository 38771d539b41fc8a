"""Every way a prompt can be wrong gets a `PromptError` that tells the person what to fix.

Each case checks the words a user needs: the parameter as they typed it, the allowed range, the
closest known name; never a traceback or a silent fallback.
"""

from __future__ import annotations

import pytest

from bot.prompt import MAX_INPUT_LENGTH, PromptError, expand_permutations, parse_prompt
from bot.prompt.parameters import PARAMETER_NAMES


def _error(text: str) -> str:
    with pytest.raises(PromptError) as caught:
        parse_prompt(text)
    return str(caught.value)


def test_prompt_error_is_a_value_error() -> None:
    assert issubclass(PromptError, ValueError)


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_prompt(text: str) -> None:
    assert "empty" in _error(text)
    with pytest.raises(PromptError, match="empty"):
        expand_permutations(text)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("--ar 16:9 --seed 4", "before the parameters"),
        ("https://e.example/a.png", "after the image URL"),
        ("https://e.example/a.png --iw 2", "after the image URL"),
    ],
)
def test_prompt_without_description(text: str, where: str) -> None:
    message = _error(text)
    assert "no description" in message
    assert where in message


def test_prompt_over_six_thousand_characters() -> None:
    text = "a" * 6001
    message = _error(text)
    assert "6,001" in message and "6,000" in message
    # A template is not yet a prompt: its expansions are what the limit applies to.
    assert expand_permutations(text) == [text]
    with pytest.raises(PromptError, match="6,000"):
        expand_permutations("a" * (MAX_INPUT_LENGTH + 1))
    assert parse_prompt("a" * 6000).text == "a" * 6000


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [
        ("a cat --sed 4", "`--seed`"),
        ("a cat --stylise 50", "`--stylize`"),
        ("a cat --qualty 2", "`--quality`"),
        ("a cat --arr 16:9", "`--ar`"),
        ("a cat --aspectratio 16:9", "`--aspect`"),
        ("a cat --chaoss 10", "`--chaos`"),
        ("a cat --ar16:9", "`--ar 16:9` (with a space)"),
        ("a cat --seed=5", "`--seed 5` (with a space)"),
        ("a cat --neg dogs", "`--no`"),
        ("a cat --negative dogs", "`--no`"),
        ("a cat --steps 30", "`--quality`"),
    ],
)
def test_unknown_parameter_names_it_and_suggests_the_closest(text: str, suggestion: str) -> None:
    typed = text.split()[2].split("=")[0]
    message = _error(text)
    assert f"`{typed}" in message and "not a parameter" in message
    assert suggestion in message


@pytest.mark.parametrize("text", ["a cat --zzz 3", "a cat --niji 6", "a cat —hd"])
def test_unknown_parameter_without_a_close_match_lists_the_known_ones(text: str) -> None:
    message = _error(text)
    assert "not a parameter" in message
    assert "--ar" in message and "--seed" in message and "--no" in message


def test_midjourney_only_parameter_says_so() -> None:
    assert "Midjourney-only" in _error("a cat --niji 6")


# Every spelling of every parameter that takes a value (the rest are flags).
VALUE_TAKING = sorted(PARAMETER_NAMES - {"tile", "fast", "relax", "turbo"})
# `--sw` and `--ow` weigh a reference picture, so their prompts carry one.
REFERENCE_FOR = {"sw": "--sref https://example.com/s.png", "ow": "--oref https://example.com/o.png"}


@pytest.mark.parametrize("name", VALUE_TAKING)
def test_a_parameter_without_its_value_shows_an_example_that_works(name: str) -> None:
    for text in (f"a cat --{name}", f"a cat --{name} --tile"):
        message = _error(text)
        assert message.startswith(f"`--{name}` needs a value, e.g. `"), message
    example = message.split("e.g. `", 1)[1].removesuffix("`.")
    # The example parses, changes the prompt, and means the same with the spelling typed
    # (`--c` is shown `--chaos 30`). `--iw` weighs an attached image, so every prompt has one.
    base = f"a cat {REFERENCE_FOR.get(name, '')}"
    shown = parse_prompt(f"{base} {example}", has_image=True)
    assert shown != parse_prompt(base, has_image=True)
    assert parse_prompt(f"{base} --{name} {example.split(' ', 1)[1]}", has_image=True) == shown


def test_no_with_only_commas_is_missing_its_terms() -> None:
    assert "needs" in _error("a cat --no , ,")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        # out of range: the message gives the range
        ("a --ar 5:1", "between 1:4 and 4:1"),
        ("a --ar 1:5", "between 1:4 and 4:1"),
        ("a --seed 4294967296", "from 0 to 4294967295"),
        ("a --seed -1", "from 0 to 4294967295"),
        ("a --seed 99999999999999999999999999999999999999", "from 0 to 4294967295"),
        ("a --chaos 101", "from 0 to 100"),
        ("a --c -1", "from 0 to 100"),
        ("a --stylize 1001", "from 0 to 1000"),
        ("a --s -5", "from 0 to 1000"),
        ("a --weird 3001", "from 0 to 3000"),
        ("a --stop 9", "from 10 to 100"),
        ("a --stop 101", "from 10 to 100"),
        ("a --repeat 0", "from 1 to 40"),
        ("a --r 41", "from 1 to 40"),
        ("a --iw 3.5", "from 0 to 3"),
        ("a --iw -0.1", "from 0 to 3"),
        ("a --q 0", ".25, .5, 1 or 2"),
        ("a --quality 3", ".25, .5, 1 or 2"),
        # malformed
        ("a --ar 16x9", "W:H"),
        ("a --ar 1.5:1", "whole numbers"),
        ("a --ar 16:9:1", "W:H"),
        ("a --ar 0:1", "above 0"),
        ("a --ar 1:0", "above 0"),
        ("a --ar -16:9", "W:H"),
        ("a --ar 1234567:1234567", "too large"),
        ("a --seed 4.5", "whole number"),
        ("a --seed abc", "whole number"),
        ("a --chaos 5.5", "whole number"),
        ("a --stylize lots", "whole number"),
        ("a --stop ½", "whole number"),
        ("a --stop ٥٠", "whole number"),  # Arabic-Indic digits are not accepted
        ("a --q high", "number"),
        ("a --iw 1e1", "number"),
        ("a --iw nan", "number"),
        ("a --iw inf", "number"),
        ("a --style raw!", "short name"),
        ("a --style 4a", "takes `raw`"),
        ("a --style cute", "got `cute`"),
        ("a --v sd/xl", "short name"),
        ("a --v " + "x" * 65, "short name"),
        ("a --seed 1 2", "takes one value"),
        ("a --ar 16:9 in the rain", "at the end"),
        ("a --tile please", "takes no value"),
    ],
)
def test_a_bad_value_names_the_parameter_what_was_typed_and_why(text: str, why: str) -> None:
    _, param, typed = text.split(" ", 2)  # each text is "a", one parameter and what was typed
    message = _error(text)
    assert f"`{param}`" in message
    assert why in message
    assert f"`{typed}`" in message


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        # a parameter given twice, under any of its names
        ("a --seed 1 --seed 2", "`--seed` is given twice"),
        ("a --s 10 --stylize 20", "(as `--s` and `--stylize`)"),
        ("a --ar 1:1 --aspect 2:1", "(as `--ar` and `--aspect`)"),
        ("a --tile --tile", "`--tile` is given twice"),
        # `::` weights that add up to nothing: the sum is shown
        ("hot dog animal::-1", "add up to -1, but they must add up to more than 0"),
        ("a::0", "add up to 0, but"),
        ("a::1 b::-1", "add up to 0, but"),
        ("a::.1 b::.2 c::-.3", "add up to 0, but"),  # exact, no float rounding
        ("a::-2 b", "add up to -1, but"),
        # a malformed multi-prompt: the part is named
        (":: dog", "starts with `::`"),
        ("::2 dog", "starts with `::`"),
        ("hot:: ::2 dog", "Part 2"),
        ("hot::2::dog", "Part 2"),
        ("hot::2 dog::99999", "too large"),
        ("hot::" + "9" * 400 + " dog", "too large"),
    ],
)
def test_a_malformed_prompt_says_what_is_wrong(text: str, hint: str) -> None:
    assert hint in _error(text)


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("a {red, blue bird", "character 3 is never closed"),
        ("a red, blue} bird", "`}` without a matching `{` (character 12)"),
        ("{a, {b, c}", "never closed"),
        ("{a}}", "without a matching"),
        ("{" * 17 + "a" + "}" * 17, "nested more than 16 deep"),
        ("{" * 3000, "never closed"),
    ],
)
def test_unbalanced_braces(text: str, hint: str) -> None:
    with pytest.raises(PromptError) as caught:
        expand_permutations(text)
    assert hint in str(caught.value)


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("{a, b, c, d, e, f, g}{1, 2, 3, 4, 5, 6, 7}", "49"),
        ("{a, b}" * 6, "64"),
        ("{a, b}" * 40, "over a billion"),
        ("{" + ", ".join(str(i) for i in range(41)) + "}", "41"),
    ],
)
def test_more_than_forty_permutations_says_how_many(text: str, count: str) -> None:
    with pytest.raises(PromptError) as caught:
        expand_permutations(text)
    message = str(caught.value)
    assert f"make {count} prompts" in message and "limit is 40" in message


def test_forty_permutations_are_fine() -> None:
    assert len(expand_permutations("{a, b, c, d, e, f, g, h}{1, 2, 3, 4, 5}")) == 40


def test_error_names_the_parameter_field() -> None:
    with pytest.raises(PromptError) as caught:
        parse_prompt("a --c 500")
    assert caught.value.parameter == "chaos"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a cat --fast --relax", "`--fast` and `--relax` both pick a speed; keep one."),
        ("a cat --turbo 2", "`--turbo` takes no value"),
    ],
)
def test_speed_parameters_are_one_choice_without_a_value(text: str, expected: str) -> None:
    assert expected in _error(text)
