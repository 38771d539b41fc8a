"""Captions for the toy world's scenes, in the many ways people write prompts.

One scene gets a different caption each time it is drawn in training (word order, synonyms,
commas, which attributes are named), so the model learns the words, not one sentence per picture.
"""

from __future__ import annotations

import random

from engine.training.world import Scene, Thing

PLACE_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("on the left", "at the left", "to the left", "left", "on the left side"),
    "right": ("on the right", "at the right", "to the right", "right", "on the right side"),
    "top": ("at the top", "on top", "top", "at the top of the picture"),
    "bottom": ("at the bottom", "bottom", "at the bottom of the picture"),
    "centre": ("in the centre", "in the center", "in the middle", "centre", "center", "middle"),
    "top left": ("in the top left corner", "at the top left", "top left", "in the top left"),
    "top right": ("in the top right corner", "at the top right", "top right", "in the top right"),
    "bottom left": ("in the bottom left corner", "at the bottom left", "bottom left", "in the bottom left"),
    "bottom right": (
        "in the bottom right corner",
        "at the bottom right",
        "bottom right",
        "in the bottom right",
    ),
}

BACKGROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "night sky": ("on a night sky", "at night", "under a night sky", "night sky", "in the night sky"),
    "day sky": ("on a day sky", "on a blue sky", "in the sky", "day sky", "under a clear sky"),
    "dusk": ("at dusk", "at sunset", "dusk", "on a dusk sky", "in the evening"),
    "sea": ("on the sea", "at sea", "on the ocean", "sea", "by the sea"),
    "grass": ("on grass", "on a grassy field", "on a meadow", "grass", "on green grass"),
    "desert": ("in the desert", "on sand", "desert", "in a sandy desert"),
    "snow": ("on snow", "in the snow", "snow", "on a snowy field", "in winter snow"),
    "plain": ("on a plain background", "on a plain grey background", "plain background", "simple background"),
}

SYNONYMS = {"grey": ("grey", "gray")}


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def describe_thing(thing: Thing, rng: random.Random, *, with_place: bool = True) -> str:
    """`a big red circle on the left`, or a shorter form when attributes are left unnamed."""
    words = []
    if thing.size_named:
        words.append(thing.size)
    if thing.colour_named:
        words.append(rng.choice(SYNONYMS.get(thing.colour, (thing.colour,))))
    words.append(thing.kind)
    lead = rng.choices(("article", "none", "one"), weights=(0.75, 0.2, 0.05))[0]
    phrase = " ".join(words)
    if lead == "article":
        phrase = f"{_article(phrase)} {phrase}"
    elif lead == "one":
        phrase = f"one {phrase}"
    if with_place and thing.place_named:
        place = rng.choice(PLACE_PHRASES[thing.place])
        phrase = f"{place} {phrase}" if rng.random() < 0.15 else f"{phrase} {place}"
    return phrase


def _join(parts: list[str], rng: random.Random) -> str:
    if len(parts) == 1:
        return parts[0]
    style = rng.random()
    if style < 0.45:
        return ", ".join(parts[:-1]) + " and " + parts[-1]
    if style < 0.8:
        return ", ".join(parts)
    return " and ".join(parts)


def caption(scene: Scene, rng: random.Random) -> str:
    """A caption naming every object of the scene (none is left for the model to invent)."""
    return caption_spans(scene, rng)[0]


def caption_spans(scene: Scene, rng: random.Random) -> tuple[str, list[tuple[Thing, str]]]:
    """A caption, and each object's own phrase in it (what the grounding loss ties to its place)."""
    things = list(scene.things)
    if rng.random() < 0.5:
        rng.shuffle(things)
    parts = [describe_thing(t, rng) for t in things]
    text = _join(parts, rng)
    if scene.background_named:
        bg = rng.choice(BACKGROUND_PHRASES[scene.background])
        form = rng.random()
        if form < 0.65:
            text = f"{text} {bg}"
        elif form < 0.85:
            text = f"{text}, {bg}"
        else:
            text = f"{bg}, {text}"
    return text, list(zip(things, parts, strict=True))


def attribute_caption(scene: Scene, rng: random.Random) -> str:
    """A caption of colours or background alone (`red and blue`, `night sky`).

    These teach the model what a lone word means, which is what `--no red` and `red::-0.5` encode:
    the guidance pushes away from "something red", not from a whole sentence.
    """
    if rng.random() < 0.3 or not scene.things:
        return rng.choice(BACKGROUND_PHRASES[scene.background])
    colours = list(dict.fromkeys(t.colour for t in scene.things))
    return _join(colours, rng)


def training_caption(
    scene: Scene, rng: random.Random, *, dropout: float = 0.1, attributes: float = 0.06
) -> str:
    """The caption a training step sees: empty (classifier-free guidance), attributes only, or full."""
    return training_caption_spans(scene, rng, dropout=dropout, attributes=attributes)[0]


def training_caption_spans(
    scene: Scene, rng: random.Random, *, dropout: float = 0.1, attributes: float = 0.06
) -> tuple[str, list[tuple[Thing, str]]]:
    """`training_caption`, with each object's phrase when the caption is a full one."""
    roll = rng.random()
    if roll < dropout:
        return "", []
    if roll < dropout + attributes:
        return attribute_caption(scene, rng), []
    return caption_spans(scene, rng)
