"""The toy model's world: captioned scenes of coloured objects on simple backgrounds.

A scene is plain data (`Scene`), drawn deterministically from a seed by `sample_scene`, rendered by
`render` with PIL and described by `engine.training.captions`. The vocabulary here is the whole
language the toy model learns; the model card (docs/toy-model.md) lists it.

Nothing at inference time imports this module: the pictures come from the denoising loop alone
(a test loads the pipeline with this module blocked from import).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40),
    "orange": (245, 135, 25),
    "yellow": (245, 215, 35),
    "green": (44, 160, 60),
    "blue": (35, 80, 215),
    "purple": (135, 55, 185),
    "pink": (245, 125, 190),
    "white": (246, 246, 246),
    "black": (22, 22, 22),
    "brown": (125, 78, 38),
    "grey": (128, 128, 128),
}

OBJECTS: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "ring",
    "moon",
    "sun",
    "tree",
    "house",
    "lighthouse",
    "boat",
    "mountain",
)

# Bumped whenever what `sample_scene` or `render` draws changes: cached latents of an older world
# are then rendered again.
WORLD_VERSION = 2

# The colour an object takes when the caption names none: what a reader would picture.
NATURAL: dict[str, tuple[str, ...]] = {
    "sun": ("yellow", "orange"),
    "moon": ("white", "yellow", "grey"),
    # Autumn trees too: with every unnamed tree green, "a tree --no green" had nothing to turn
    # to, and the guidance only shrank the tree (35% of its green removed, 2026-12-06).
    "tree": ("green", "green", "green", "orange", "yellow", "brown"),
    "house": ("red", "brown", "white", "yellow"),
    "lighthouse": ("white", "red"),
    "boat": ("brown", "white", "red"),
    "mountain": ("grey", "brown"),
    "star": ("yellow", "white"),
}

# Where an object stands, as the fraction of width and height of its centre.
PLACES: dict[str, tuple[float, float]] = {
    "left": (0.24, 0.5),
    "right": (0.76, 0.5),
    "top": (0.5, 0.24),
    "bottom": (0.5, 0.76),
    "centre": (0.5, 0.5),
    "top left": (0.24, 0.24),
    "top right": (0.76, 0.24),
    "bottom left": (0.24, 0.76),
    "bottom right": (0.76, 0.76),
}

BACKGROUNDS: tuple[str, ...] = ("night sky", "day sky", "dusk", "sea", "grass", "desert", "snow", "plain")

SIZES: dict[str, tuple[float, float]] = {  # radius as a fraction of the shorter side
    "small": (0.09, 0.12),
    "medium": (0.14, 0.18),
    "big": (0.22, 0.27),
}

# The aspect buckets the model is trained at (pixels), matching what `--ar` asks of a 128 px model
# with a size step of 16 (bot.prompt.dimensions_for): 1:1, 16:9, 9:16, 3:2, 2:3, 4:5, 5:4.
BUCKETS: tuple[tuple[int, int], ...] = (
    (128, 128),
    (176, 96),
    (96, 176),
    (144, 96),
    (96, 144),
    (112, 144),
    (144, 112),
)
# How often each bucket is drawn: square most, as most prompts are.
BUCKET_WEIGHTS: tuple[float, ...] = (0.46, 0.12, 0.08, 0.1, 0.08, 0.08, 0.08)


@dataclass(frozen=True)
class Thing:
    """One object of a scene: what it is, its colour, where and how big."""

    kind: str
    colour: str
    place: str
    size: str
    dx: float = 0.0  # jitter of the centre, as a fraction of the side
    dy: float = 0.0
    grow: float = 0.5  # where in its size's range the radius falls (0: smallest, 1: largest)
    colour_named: bool = True
    place_named: bool = True
    size_named: bool = True


@dataclass(frozen=True)
class Scene:
    things: tuple[Thing, ...]
    background: str
    background_named: bool = True
    seed: int = 0  # the rest of the picture's randomness (stars, waves)

    def mirrored(self) -> Scene:
        """The same scene flipped left to right (places and jitter follow)."""
        swap = {"left": "right", "right": "left"}

        def flip(place: str) -> str:
            return " ".join(swap.get(w, w) for w in place.split())

        return replace(self, things=tuple(replace(t, place=flip(t.place), dx=-t.dx) for t in self.things))


def held_out(colour: str, kind: str, place: str) -> bool:
    """About one combination in eight of colour x object x place never appears in training.

    A stable hash (not Python's salted `hash`), so every run holds out the same combinations and
    the benchmark can report on them separately: the model must compose what it saw apart.
    """
    digest = hashlib.sha256(f"{colour}|{kind}|{place}".encode()).digest()
    return digest[0] % 8 == 0


def _pick_colour(rng: random.Random, kind: str, named: bool) -> str:
    if not named and kind in NATURAL:
        return rng.choice(NATURAL[kind])
    return rng.choice(list(COLOURS))


def sample_scene(seed: int, *, allow_held_out: bool = False) -> Scene:
    """A random scene of one to three objects in distinct places, the same for the same seed."""
    rng = random.Random(seed)
    count = rng.choices((1, 2, 3), weights=(0.5, 0.35, 0.15))[0]
    places = rng.sample(list(PLACES), count)
    if count > 1 and "centre" in places:  # centre overlaps everything else at these sizes
        places = [p for p in places if p != "centre"] or ["left"]
        while len(places) < count:
            extra = rng.choice([p for p in PLACES if p != "centre" and p not in places])
            places.append(extra)
    things = []
    for place in places:
        for _attempt in range(20):
            kind = rng.choice(OBJECTS)
            colour_named = rng.random() < 0.85
            colour = _pick_colour(rng, kind, colour_named)
            if allow_held_out or not held_out(colour, kind, place):
                break
        if count == 1:
            size = rng.choices(("small", "medium", "big"), weights=(0.3, 0.4, 0.3))[0]
        else:
            size = rng.choices(("small", "medium"), weights=(0.5, 0.5))[0]
        things.append(
            Thing(
                kind=kind,
                colour=colour,
                place=place,
                size=size,
                dx=rng.uniform(-0.05, 0.05),
                dy=rng.uniform(-0.05, 0.05),
                grow=rng.random(),
                colour_named=colour_named,
                place_named=rng.random() < 0.8,
                size_named=size != "medium" and rng.random() < 0.7,
            )
        )
    return Scene(
        things=tuple(things),
        background=rng.choice(BACKGROUNDS),
        background_named=rng.random() < 0.8,
        seed=rng.getrandbits(32),
    )


# ---------------------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------------------

SUPERSAMPLE = 3  # drawn at 3x and reduced: smooth edges, as a photograph of the shape would have

_SKY = ((105, 165, 232), (178, 212, 245))
_GROUNDS = {
    "sea": ((40, 100, 170), (22, 64, 128)),
    "grass": ((92, 170, 70), (50, 122, 42)),
    "desert": ((232, 200, 130), (210, 168, 96)),
    "snow": ((236, 240, 246), (214, 222, 234)),
}


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], t: float) -> tuple[int, int, int]:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _gradient(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], top, bottom) -> None:
    x0, y0, x1, y1 = box
    for y in range(y0, y1):
        t = (y - y0) / max(1, y1 - y0 - 1)
        draw.line([(x0, y), (x1, y)], fill=_mix(top, bottom, t))


def _background(width: int, height: int, name: str, rng: random.Random) -> Image.Image:
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    horizon = round(height * rng.uniform(0.38, 0.5))
    if name == "night sky":
        _gradient(draw, (0, 0, width, height), (8, 12, 40), (28, 38, 86))
        for _ in range(rng.randint(14, 28)):
            x, y = rng.randrange(width), rng.randrange(height)
            r = rng.choice((1, 1, 2)) * SUPERSAMPLE // 2 + 1
            draw.ellipse((x - r, y - r, x + r, y + r), fill=(235, 235, 210))
    elif name == "day sky":
        _gradient(draw, (0, 0, width, height), *_SKY)
    elif name == "dusk":
        _gradient(draw, (0, 0, width, height), (62, 40, 112), (240, 128, 70))
    elif name == "plain":
        draw.rectangle((0, 0, width, height), fill=(214, 212, 206))
    else:
        sky = ((188, 204, 226), (220, 228, 238)) if name == "snow" else _SKY
        _gradient(draw, (0, 0, width, horizon), *sky)
        _gradient(draw, (0, horizon, width, height), *_GROUNDS[name])
        if name == "sea":
            for _ in range(rng.randint(5, 9)):
                y = rng.randrange(horizon + 4, height)
                x = rng.randrange(width)
                length = rng.randrange(width // 10, width // 4)
                draw.line([(x, y), (x + length, y)], fill=(90, 150, 210), width=SUPERSAMPLE)
    return image


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(max(0, min(255, round(c * factor))) for c in colour)  # type: ignore[return-value]


def _contrast(colour_name: str, options: tuple[str, str]) -> tuple[int, int, int]:
    """A detail colour that stays visible on the object (white stripes, unless the object is white)."""
    return COLOURS[options[1] if colour_name == options[0] else options[0]]


def _star(cx: float, cy: float, r: float, points: int = 5, inner: float = 0.45) -> list[tuple[float, float]]:
    out = []
    for i in range(points * 2):
        radius = r if i % 2 == 0 else r * inner
        angle = -math.pi / 2 + i * math.pi / points
        out.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return out


def _draw_thing(image: Image.Image, thing: Thing, cx: float, cy: float, r: float) -> None:
    draw = ImageDraw.Draw(image)
    colour = COLOURS[thing.colour]
    kind = thing.kind
    if kind == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif kind == "square":
        s = r * 0.85
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=colour)
    elif kind == "triangle":
        draw.polygon(
            [(cx, cy - r), (cx + r * 0.95, cy + r * 0.75), (cx - r * 0.95, cy + r * 0.75)], fill=colour
        )
    elif kind == "star":
        draw.polygon(_star(cx, cy, r * 1.1), fill=colour)
    elif kind == "ring":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=colour, width=max(1, round(r * 0.38)))
    elif kind == "moon":
        mask = Image.new("L", image.size, 0)
        mdraw = ImageDraw.Draw(mask)
        mdraw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=255)
        ox = r * 0.55
        mdraw.ellipse((cx - r + ox, cy - r - r * 0.15, cx + r + ox, cy + r - r * 0.15), fill=0)
        image.paste(colour, mask=mask)
    elif kind == "sun":
        for i in range(8):
            a = i * math.pi / 4
            tip = (cx + r * math.cos(a), cy + r * math.sin(a))
            side = 0.16
            b1 = (cx + 0.55 * r * math.cos(a - side), cy + 0.55 * r * math.sin(a - side))
            b2 = (cx + 0.55 * r * math.cos(a + side), cy + 0.55 * r * math.sin(a + side))
            draw.polygon([tip, b1, b2], fill=colour)
        s = r * 0.6
        draw.ellipse((cx - s, cy - s, cx + s, cy + s), fill=colour)
    elif kind == "tree":
        trunk = COLOURS["brown"] if thing.colour != "brown" else COLOURS["black"]
        draw.rectangle((cx - r * 0.14, cy + r * 0.1, cx + r * 0.14, cy + r), fill=trunk)
        s = r * 0.68
        draw.ellipse((cx - s, cy - r * 0.35 - s, cx + s, cy - r * 0.35 + s), fill=colour)
    elif kind == "house":
        draw.rectangle((cx - r * 0.75, cy - r * 0.15, cx + r * 0.75, cy + r * 0.85), fill=colour)
        roof = _shade(colour, 0.62) if thing.colour not in ("black", "brown") else (150, 40, 36)
        draw.polygon(
            [(cx - r * 0.95, cy - r * 0.1), (cx + r * 0.95, cy - r * 0.1), (cx, cy - r * 0.9)], fill=roof
        )
        draw.rectangle(
            (cx - r * 0.15, cy + r * 0.35, cx + r * 0.15, cy + r * 0.85), fill=_shade(colour, 0.45)
        )
    elif kind == "lighthouse":
        top, bottom = cy - r, cy + r
        draw.polygon(
            [
                (cx - r * 0.22, top + r * 0.3),
                (cx + r * 0.22, top + r * 0.3),
                (cx + r * 0.34, bottom),
                (cx - r * 0.34, bottom),
            ],
            fill=colour,
        )
        stripe = _contrast(thing.colour, ("white", "red"))
        for t in (0.45, 0.75):
            y = top + (bottom - top) * t
            half = r * (0.22 + 0.12 * t)
            draw.rectangle((cx - half, y - r * 0.07, cx + half, y + r * 0.07), fill=stripe)
        draw.rectangle((cx - r * 0.16, top + r * 0.05, cx + r * 0.16, top + r * 0.3), fill=COLOURS["yellow"])
        draw.polygon(
            [(cx - r * 0.22, top + r * 0.06), (cx + r * 0.22, top + r * 0.06), (cx, top - r * 0.12)],
            fill=_shade(colour, 0.6),
        )
    elif kind == "boat":
        draw.polygon(
            [
                (cx - r, cy + r * 0.25),
                (cx + r, cy + r * 0.25),
                (cx + r * 0.7, cy + r * 0.75),
                (cx - r * 0.7, cy + r * 0.75),
            ],
            fill=colour,
        )
        sail = _contrast(thing.colour, ("white", "grey"))
        draw.polygon(
            [(cx + r * 0.05, cy - r * 0.85), (cx + r * 0.05, cy + r * 0.15), (cx + r * 0.65, cy + r * 0.15)],
            fill=sail,
        )
        draw.line([(cx, cy - r * 0.9), (cx, cy + r * 0.25)], fill=(60, 45, 30), width=max(1, round(r * 0.06)))
    elif kind == "mountain":
        draw.polygon(
            [(cx, cy - r), (cx + r * 1.25, cy + r * 0.8), (cx - r * 1.25, cy + r * 0.8)], fill=colour
        )
        cap = _contrast(thing.colour, ("white", "grey"))
        draw.polygon([(cx, cy - r), (cx + r * 0.34, cy - r * 0.5), (cx - r * 0.34, cy - r * 0.5)], fill=cap)
    else:
        raise ValueError(f"unknown object {kind!r}")


def thing_box(thing: Thing, width: int, height: int) -> tuple[float, float, float]:
    """Centre x, centre y and radius in pixels of a thing in a picture of that size."""
    fx, fy = PLACES[thing.place]
    lo, hi = SIZES[thing.size]
    radius = (lo + (hi - lo) * thing.grow) * min(width, height)
    return (fx + thing.dx) * width, (fy + thing.dy) * height, radius


def render(scene: Scene, width: int = 128, height: int = 128) -> Image.Image:
    """The scene as an RGB picture of that size (the same pixels for the same scene)."""
    rng = random.Random(scene.seed)
    big_w, big_h = width * SUPERSAMPLE, height * SUPERSAMPLE
    image = _background(big_w, big_h, scene.background, rng)
    for thing in scene.things:
        cx, cy, r = thing_box(thing, big_w, big_h)
        _draw_thing(image, thing, cx, cy, r)
    return image.resize((width, height), Image.Resampling.BOX)
