"""The toy model's world, vocabulary and training recipe (no trained weights needed)."""

from __future__ import annotations

import ast
import inspect
import random
import re

import numpy as np
import pytest

from engine.training import checker, config
from engine.training.captions import caption, training_caption
from engine.training.vocabulary import MAX_TOKENS, build_tokenizer, world_words
from engine.training.world import BUCKETS, COLOURS, OBJECTS, PLACES, held_out, render, sample_scene


def test_the_same_seed_draws_the_same_scene_and_pixels():
    a, b = sample_scene(77), sample_scene(77)
    assert a == b
    assert np.array_equal(np.asarray(render(a)), np.asarray(render(b)))
    assert not np.array_equal(np.asarray(render(a)), np.asarray(render(sample_scene(78))))


@pytest.mark.parametrize(("width", "height"), BUCKETS)
def test_every_aspect_bucket_renders_at_its_size(width, height):
    image = render(sample_scene(5), width, height)
    assert image.size == (width, height)


def test_held_out_combinations_never_reach_training():
    total = sum(held_out(c, k, p) for c in COLOURS for k in OBJECTS for p in PLACES)
    assert 0.08 < total / (len(COLOURS) * len(OBJECTS) * len(PLACES)) < 0.18
    for seed in range(3000):
        for thing in sample_scene(seed).things:
            assert not held_out(thing.colour, thing.kind, thing.place), (seed, thing)


def test_captions_name_every_object_and_use_only_world_words():
    rng = random.Random(3)
    words = set(world_words())
    for seed in range(500):
        scene = sample_scene(seed)
        text = caption(scene, rng)
        for thing in scene.things:
            assert thing.kind in text
        assert set(re.findall(r"[a-z]+", text)) <= words, text
    dropped = [training_caption(sample_scene(s), rng) for s in range(2000)]
    assert 0.05 < dropped.count("") / len(dropped) < 0.15  # caption dropout for guidance


def test_every_world_word_is_one_token_and_other_words_split():
    tokenizer = build_tokenizer()
    for word in world_words():
        assert len(tokenizer.tokenize(word)) == 1, word
    assert len(tokenizer.tokenize("dragon")) > 1
    longest = max(len(tokenizer(caption(sample_scene(s), random.Random(s))).input_ids) for s in range(2000))
    assert longest <= MAX_TOKENS


def test_the_checker_reads_rendered_scenes_as_a_person_would():
    """On the world's own pictures (the best a model could do) the checker names colour and place."""
    colour_ok = place_ok = n = 0
    for seed in range(600):
        scene = sample_scene(seed)
        if len(scene.things) != 1:
            continue
        thing = scene.things[0]
        if thing.colour in checker.BACKGROUND_COLOURS[scene.background]:
            continue
        rgb = np.asarray(render(scene))
        n += 1
        colour_ok += checker.colour_drawn(rgb, thing.colour, scene.background)
        centre = checker.place_of(rgb, thing.colour)
        place_ok += centre is not None and checker.place_matches(centre, thing.place)
    assert n > 100
    assert colour_ok / n > 0.98 and place_ok / n > 0.97


def test_the_checker_does_not_import_the_renderer():

    tree = ast.parse(inspect.getsource(checker))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not any(name and name.startswith("engine.training") for name in imported)


def test_an_unnamed_tree_is_mostly_green_but_not_always():
    # `--no green` on "a tree" needs trees of another colour to turn to (autumn ones).
    colours = [
        t.colour
        for seed in range(4000)
        for t in sample_scene(seed).things
        if t.kind == "tree" and not t.colour_named
    ]
    green = colours.count("green") / len(colours)
    assert 0.35 < green < 0.65
    assert {"orange", "yellow", "brown"} <= set(colours)


def test_cached_latents_belong_to_the_world_that_drew_them(monkeypatch):
    before = config.TrainConfig().stage_key("latents")
    monkeypatch.setattr(config, "WORLD_VERSION", config.WORLD_VERSION + 1)
    assert config.TrainConfig().stage_key("latents") != before
