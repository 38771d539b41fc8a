"""shorten: each word's score is how far dropping it moves the text encoder's embedding."""

from __future__ import annotations

import numpy as np
import pytest

from engine.api import EngineConfig, PromptSpec, ShortenRequest
from engine.core import EngineCore
from tests.engine.conftest import distance, fail, finish, imagine


def test_every_word_gets_a_score_and_no_images(core):
    words = ("a", "red", "lighthouse", "at", "dusk")
    done = finish(core, ShortenRequest("shorten", words))
    assert done.images == () and done.grid is None
    assert len(done.scores) == len(words)
    assert all(0.0 <= score <= 2.0 for score in done.scores)
    assert len(set(done.scores)) > 1  # the words do not all matter alike


def test_the_scores_are_reproducible(core):
    words = ("a", "cat", "on", "a", "hill")
    assert finish(core, ShortenRequest("a", words)).scores == finish(core, ShortenRequest("b", words)).scores


def test_the_sdxl_family_is_scored_on_both_encoders(xl_core):
    done = finish(xl_core, ShortenRequest("xl", ("a", "blue", "boat")))
    assert len(done.scores) == 3


def test_an_empty_or_endless_prompt_is_refused(core):
    assert "at least one word" in fail(core, ShortenRequest("e", ())).reason
    assert "at most 200 words" in fail(core, ShortenRequest("e", ("word",) * 201)).reason


@pytest.fixture(scope="module")
def toy() -> EngineCore:
    core = EngineCore(EngineConfig(model="toy", device="cpu", warmup=False))
    core.load()
    return core


def test_on_the_toy_model_colour_place_and_time_outrank_the_function_words(toy):
    """The project's own trained model: the words it draws by (colour, place, time of day) matter
    more to its text encoder than prepositions and articles (figures in the README's /shorten
    section). Object kinds are not in the list: at 128 px the kind of a small second object barely
    changes the picture (a blue shape with or without "house"), and the encoder weighs "house"
    about like "at"; the picture test below checks the ranking against what the model draws."""
    words = ("a", "red", "circle", "on", "the", "left", "of", "a", "blue", "house", "at", "night")
    scores = dict(zip(words, finish(toy, ShortenRequest("toy", words)).scores, strict=True))
    drawn_by = [scores[w] for w in ("red", "left", "blue", "night")]
    function = [scores[w] for w in ("on", "the", "of", "at")]
    assert min(drawn_by) > 2 * max(function)  # 2.6x measured on the shipped weights


@pytest.mark.parametrize(
    "prompt", ["a red circle on the left of a blue house at night", "a yellow star at the top on grass"]
)
def test_on_the_toy_model_dropping_the_lowest_ranked_words_keeps_the_picture(toy, prompt):
    """What /shorten promises: the words it ranks lowest can go. Without the lowest-ranked third
    the grid (same seeds) stays close to the full prompt's; without the highest-ranked third it
    does not (measured 2026-12-06: 7.7 against 102 levels, and 1.4 against 23)."""
    words = tuple(prompt.split())
    scores = finish(toy, ShortenRequest("toy", words)).scores
    order = sorted(range(len(words)), key=lambda i: scores[i])
    third = len(words) // 3

    def grid_without(dropped: set[int]):
        kept = " ".join(w for i, w in enumerate(words) if i not in dropped)
        return finish(toy, imagine(prompt=PromptSpec.single(kept), seeds=(1, 2, 3, 4))).images

    full = grid_without(set())
    low = np.mean([distance(a, b) for a, b in zip(full, grid_without(set(order[:third])), strict=True)])
    high = np.mean([distance(a, b) for a, b in zip(full, grid_without(set(order[-third:])), strict=True)])
    assert high > 4 * low, (low, high)
