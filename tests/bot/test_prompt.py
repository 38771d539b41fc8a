"""The prompt language as a member types it: descriptions, `::` weights, image URLs, parameters.

The cases follow Midjourney's documented behaviour (multi-prompts, weight normalisation,
parameters and their aliases); errors live in test_prompt_errors.py, `{…}` in
test_prompt_permutations.py, properties in test_prompt_properties.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.prompt import DEFAULTS, Prompt, parse_prompt


def test_plain_prompt_gets_every_default() -> None:
    p = parse_prompt("  a lighthouse\n at   dusk ")
    assert p.text == "a lighthouse at dusk"
    assert p.segments == [("a lighthouse at dusk", 1.0)]
    assert p.normalized_segments == [("a lighthouse at dusk", 1.0)]
    assert p.negative == []
    assert p.image_urls == []
    for name, default in DEFAULTS.items():
        assert getattr(p, name) == default, name
    assert (p.aspect, p.stylize, p.chaos, p.quality, p.weird, p.stop, p.repeat, p.tile) == (
        (1, 1),
        100,
        0,
        1.0,
        0,
        100,
        1,
        False,
    )
    assert str(p) == "a lighthouse at dusk"


# --- `::` multi-prompts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("hot dog", [("hot dog", 1.0)]),
        ("hot:: dog", [("hot", 1.0), ("dog", 1.0)]),
        ("hot::2 dog", [("hot", 2.0), ("dog", 1.0)]),
        ("hot::1 dog", [("hot", 1.0), ("dog", 1.0)]),
        ("hot::100 dog::100", [("hot", 100.0), ("dog", 100.0)]),
        ("space:: ship", [("space", 1.0), ("ship", 1.0)]),
        ("space ship", [("space ship", 1.0)]),
        ("tulips:: red::-.5", [("tulips", 1.0), ("red", -0.5)]),
        ("still life painting:: fruit::-.5", [("still life painting", 1.0), ("fruit", -0.5)]),
        ("cup::2 cake", [("cup", 2.0), ("cake", 1.0)]),
        ("a::1.5 b::.25 c", [("a", 1.5), ("b", 0.25), ("c", 1.0)]),
        ("hot dog::", [("hot dog", 1.0)]),
        ("hot dog::3", [("hot dog", 3.0)]),
        ("a::0 b", [("a", 0.0), ("b", 1.0)]),
        # the number must follow the colons directly and end at a space: otherwise it is words
        ("hot:: 2 dogs", [("hot", 1.0), ("2 dogs", 1.0)]),
        ("year::2000s style", [("year", 1.0), ("2000s style", 1.0)]),
        ("a:::b", [("a", 1.0), (":b", 1.0)]),
    ],
)
def test_multi_prompt_segments(text: str, segments: list[tuple[str, float]]) -> None:
    p = parse_prompt(text)
    assert p.segments == segments
    assert p.text == text  # the description keeps the weights as typed


@pytest.mark.parametrize(
    "equivalent",
    [
        ["hot:: dog", "hot::1 dog", "hot::100 dog::100"],
        ["cup::2 cake", "cup::4 cake::2", "cup::1 cake::.5"],
        ["tulips:: red::-.5", "tulips::2 red::-1"],
    ],
)
def test_weights_that_midjourney_treats_alike_normalise_alike(equivalent: list[str]) -> None:
    normalised = [parse_prompt(text).normalized_segments for text in equivalent]
    assert all(n == normalised[0] for n in normalised)


def test_normalised_weights_values() -> None:
    assert parse_prompt("hot:: dog").normalized_segments == [("hot", 0.5), ("dog", 0.5)]
    assert parse_prompt("tulips:: red::-.5").normalized_segments == [("tulips", 2.0), ("red", -1.0)]
    cup = parse_prompt("cup::2 cake").normalized_segments
    assert [t for t, _ in cup] == ["cup", "cake"]
    assert [w for _, w in cup] == pytest.approx([2 / 3, 1 / 3])
    assert sum(w for _, w in parse_prompt("a::3 b::-1 c::.5").normalized_segments) == pytest.approx(1.0)


def test_raw_weights_are_kept() -> None:
    assert parse_prompt("hot::100 dog::100").segments == [("hot", 100.0), ("dog", 100.0)]


# --- image URLs --------------------------------------------------------------------------------


def test_image_urls_at_the_front_are_image_prompts() -> None:
    p = parse_prompt(
        "https://cdn.example.com/a.png http://example.org/photos/b.JPEG?size=large "
        "<https://media.example.net/c.webp> a cat in a hat --iw 1.5"
    )
    assert p.image_urls == [
        "https://cdn.example.com/a.png",
        "http://example.org/photos/b.JPEG?size=large",
        "https://media.example.net/c.webp",
    ]
    assert p.text == "a cat in a hat"
    assert p.image_weight == 1.5
    assert str(p).startswith("https://cdn.example.com/a.png http://example.org/photos/b.JPEG?size=large ")


@pytest.mark.parametrize(
    "text",
    [
        "a cat https://example.com/a.png",  # not at the front: part of the description
        "https://example.com/page a cat",  # not an image
        "ftp://example.com/a.png a cat",  # not http(s)
        "https:///a.png a cat",  # no host
    ],
)
def test_other_urls_stay_in_the_description(text: str) -> None:
    p = parse_prompt(text)
    assert p.image_urls == []
    assert p.text == text


@pytest.mark.parametrize("ext", ["png", "jpg", "jpeg", "gif", "webp"])
def test_every_image_extension(ext: str) -> None:
    assert parse_prompt(f"https://x.example/i.{ext} sky").image_urls == [f"https://x.example/i.{ext}"]


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "value"),
    [
        ("--ar 16:9", "aspect", (16, 9)),
        ("--aspect 2:3", "aspect", (2, 3)),
        ("--ar 4:1", "aspect", (4, 1)),
        ("--ar 1:4", "aspect", (1, 4)),
        ("--ar 32:18", "aspect", (16, 9)),  # a ratio: reduced
        ("--ar 5:5", "aspect", (1, 1)),
        ("--seed 0", "seed", 0),
        ("--seed 4294967295", "seed", 4294967295),
        ("--chaos 30", "chaos", 30),
        ("--c 100", "chaos", 100),
        ("--stylize 0", "stylize", 0),
        ("--s 1000", "stylize", 1000),
        ("--quality .25", "quality", 0.25),
        ("--q .5", "quality", 0.5),
        ("--q 1", "quality", 1.0),
        ("--q 2", "quality", 2.0),
        ("--q 0.1", "quality", 0.25),  # others round to the nearest
        ("--q .4", "quality", 0.5),
        ("--q .75", "quality", 1.0),  # a tie rounds up
        ("--q 1.2", "quality", 1.0),
        ("--q 1.5", "quality", 2.0),
        ("--weird 3000", "weird", 3000),
        ("--w 250", "weird", 250),
        ("--stop 10", "stop", 10),
        ("--stop 85", "stop", 85),
        ("--repeat 40", "repeat", 40),
        ("--r 3", "repeat", 3),
        ("--tile", "tile", True),
        ("--style raw", "style", "raw"),
        ("--style RAW", "style", "raw"),
        ("--v sdxl", "version", "sdxl"),
        ("--v 6", "version", "6"),
        ("--version 5.2", "version", "5.2"),
        ("--version SD-Turbo", "version", "sd-turbo"),
        ("--iw 0", "image_weight", 0.0),
        ("--iw 3", "image_weight", 3.0),
        ("--iw .5", "image_weight", 0.5),
        ("--no people", "negative", ["people"]),
        ("--no people, text ,  watermark", "negative", ["people", "text", "watermark"]),
        ("--no humans animals buildings", "negative", ["humans animals buildings"]),
        ("--no red, ", "negative", ["red"]),
        ("--no a --no b, c", "negative", ["a", "b", "c"]),
    ],
)
def test_parameter_values(params: str, field: str, value: object) -> None:
    has_image = field == "image_weight"  # `--iw` weighs an image, here an attached one
    p = parse_prompt(f"a red barn {params}", has_image=has_image)
    assert p.text == "a red barn"
    assert getattr(p, field) == value
    assert parse_prompt(str(p), has_image=has_image) == p


def test_many_parameters_at_once_and_case_insensitive_names() -> None:
    p = parse_prompt(
        "a red barn --AR 3:2 --Seed 7 --no cows, fences --c 5 --s 250 --q .5 --w 10 --stop 90 "
        "--r 2 --tile --style raw --v sdxl --iw 2",
        has_image=True,
    )
    expected = Prompt(
        text="a red barn",
        negative=["cows", "fences"],
        aspect=(3, 2),
        seed=7,
        chaos=5,
        stylize=250,
        quality=0.5,
        weird=10,
        stop=90,
        repeat=2,
        tile=True,
        style="raw",
        version="sdxl",
        image_weight=2.0,
    )
    assert p == expected
    assert str(p) == (
        "a red barn --ar 3:2 --chaos 5 --iw 2 --no cows, fences --quality 0.5 --repeat 2 --seed 7 "
        "--stop 90 --style raw --stylize 250 --tile --v sdxl --weird 10"
    )


@pytest.mark.parametrize(
    "text",
    [
        "a red barn —ar 16:9 —seed 3",
        "a red barn —ar 16:9 --seed 3",
        "a red barn\n--ar 16:9\t--seed 3",
    ],
)
def test_em_dash_counts_as_two_hyphens(text: str) -> None:
    p = parse_prompt(text)
    assert (p.text, p.aspect, p.seed) == ("a red barn", (16, 9), 3)


def test_dashes_inside_the_description_are_words() -> None:
    p = parse_prompt("sunset — calm sea, well-lit x--y -- 3 --5")
    assert p.text == "sunset — calm sea, well-lit x--y -- 3 --5"
    assert p.aspect == (1, 1)


def test_default_parameters_are_left_out_of_the_canonical_form() -> None:
    p = parse_prompt("a cat --ar 1:1 --s 100 --q 1 --chaos 0 --stop 100 --r 1")
    assert str(p) == "a cat"
    assert p == parse_prompt("a cat")


def test_canonical_form_reads_back_equal() -> None:
    raw = "<https://e.example/a.png>  owl::2  moon::-.5 —aspect 9:16 --no trees,  clouds --q .3 --iw .05"
    p = parse_prompt(raw)
    assert (
        str(p)
        == "https://e.example/a.png owl::2 moon::-.5 --ar 9:16 --iw 0.05 --no trees, clouds --quality 0.25"
    )
    assert parse_prompt(str(p)) == p
    assert hash(parse_prompt(str(p))) == hash(p)


def test_prompt_built_in_code_has_one_segment() -> None:
    assert Prompt("a cat").segments == [("a cat", 1.0)]
    assert parse_prompt(str(Prompt("a cat", seed=5))) == Prompt("a cat", seed=5)


def test_import_stays_light() -> None:
    code = (
        "import sys\n"
        "from bot.prompt import parse_prompt, expand_permutations, PromptError, dimensions_for\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'diffusers', 'discord'})\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("speed", ["fast", "relax", "turbo"])
def test_a_speed_parameter_is_read_and_written_back(speed):
    prompt = parse_prompt(f"a cat —{speed.upper()} --ar 2:1")
    assert prompt.speed == speed and str(prompt) == f"a cat --ar 2:1 --{speed}"
    assert parse_prompt(str(prompt)) == prompt
