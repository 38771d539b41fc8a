"""`{a, b}` permutation prompts, with Midjourney's documented examples."""

from __future__ import annotations

import pytest

from bot.prompt import expand_permutations, parse_prompt


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a {red, green, yellow} bird",
            ["a red bird", "a green bird", "a yellow bird"],
        ),
        (
            "a naturalist illustration of a {pineapple, blueberry, rambutan, banana} bird",
            [
                "a naturalist illustration of a pineapple bird",
                "a naturalist illustration of a blueberry bird",
                "a naturalist illustration of a rambutan bird",
                "a naturalist illustration of a banana bird",
            ],
        ),
        # several groups multiply, the first group varying slowest
        (
            "a {red, green} bird in the {jungle, desert}",
            [
                "a red bird in the jungle",
                "a red bird in the desert",
                "a green bird in the jungle",
                "a green bird in the desert",
            ],
        ),
        # nesting (Midjourney's example: a bird in a style, with a sub-choice of vibrant colours)
        (
            "A {sculpture, painting {in oil, in watercolour}} of a cat",
            [
                "A sculpture of a cat",
                "A painting in oil of a cat",
                "A painting in watercolour of a cat",
            ],
        ),
        (
            "a {{tiny, huge} {red, blue}, plain} box",
            [
                "a tiny red box",
                "a tiny blue box",
                "a huge red box",
                "a huge blue box",
                "a plain box",
            ],
        ),
        # inside parameters
        (
            "a bird --ar {3:2, 1:1, 2:3, 1:2}",
            ["a bird --ar 3:2", "a bird --ar 1:1", "a bird --ar 2:3", "a bird --ar 1:2"],
        ),
        (
            "a {cat, dog} --{chaos, weird} 20",
            ["a cat --chaos 20", "a cat --weird 20", "a dog --chaos 20", "a dog --weird 20"],
        ),
        # `\,` is a literal comma, `\{` `\}` literal braces
        (
            r"a still life of {apples\, pears, grapes}",
            ["a still life of apples, pears", "a still life of grapes"],
        ),
        (r"a \{literal\} sign, {x}", ["a {literal} sign, x"]),
        # an empty option and a group of one
        ("a {, big} house", ["a house", "a big house"]),
        ("a {big} house", ["a big house"]),
        # no braces: the prompt itself, whitespace folded
        ("a  lighthouse,\n at dusk", ["a lighthouse, at dusk"]),
        # a lone backslash elsewhere stays
        (r"C:\path {a, b}", [r"C:\path a", r"C:\path b"]),
        # duplicates are kept, like Midjourney
        ("{a, a}", ["a", "a"]),
    ],
)
def test_expansions(text: str, expected: list[str]) -> None:
    assert expand_permutations(text) == expected


def test_expanded_parameters_parse() -> None:
    prompts = [parse_prompt(t) for t in expand_permutations("a bird --ar {16:9, 9:16} --seed {1, 2}")]
    assert [(p.aspect, p.seed) for p in prompts] == [((16, 9), 1), ((16, 9), 2), ((9, 16), 1), ((9, 16), 2)]


def test_no_terms_inside_a_group() -> None:
    prompts = [parse_prompt(t) for t in expand_permutations(r"a garden --no {roses\, tulips, weeds}")]
    assert [p.negative for p in prompts] == [["roses", "tulips"], ["weeds"]]


def test_multi_prompt_inside_a_group() -> None:
    prompts = [parse_prompt(t) for t in expand_permutations("a {hot::2 dog, cat}")]
    assert [p.segments for p in prompts] == [[("a hot", 2.0), ("dog", 1.0)], [("a cat", 1.0)]]


def test_braces_are_plain_characters_to_parse_prompt() -> None:
    p = parse_prompt("a {red, blue} bird")
    assert p.text == "a {red, blue} bird"
    assert parse_prompt(str(p)) == p
