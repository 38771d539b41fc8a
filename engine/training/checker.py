"""An independent judge of what a picture shows: colour masses and where they sit.

It looks at pixels only. It does not import the world's renderer or know its exact colours: each
pixel is named by hue, saturation and value bands, as a person would name it, and each background
by the colours a person would see in it. The benchmark and the semantic tests ask it whether the
colour named was drawn, and where.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NAMES: tuple[str, ...] = (
    "red",
    "orange",
    "yellow",
    "green",
    "blue",
    "purple",
    "pink",
    "white",
    "black",
    "brown",
    "grey",
)
INDEX = {name: i for i, name in enumerate(NAMES)}

# The colours a viewer sees in each background; a colour named in a prompt is judged only where
# the background does not show it too (a blue boat at sea cannot be told from the sea by colour).
BACKGROUND_COLOURS: dict[str, frozenset[str]] = {
    "night sky": frozenset({"black", "blue", "white"}),
    "day sky": frozenset({"blue", "white", "grey"}),
    "dusk": frozenset({"purple", "pink", "red", "orange", "brown"}),
    "sea": frozenset({"blue", "white", "grey"}),
    "grass": frozenset({"green", "blue", "white", "grey"}),
    "desert": frozenset({"yellow", "orange", "brown", "blue", "white", "grey"}),
    "snow": frozenset({"white", "grey", "blue"}),
    "plain": frozenset({"grey", "white"}),
}


def classify(rgb: np.ndarray) -> np.ndarray:
    """Name every pixel of an (H, W, 3) uint8 array: an (H, W) array of indices into NAMES."""
    x = rgb.astype(np.float32) / 255.0
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    v = x.max(axis=-1)
    c = v - x.min(axis=-1)
    s = np.where(v > 0, c / np.maximum(v, 1e-6), 0)
    safe = np.maximum(c, 1e-6)
    h = (
        np.where(
            v == r,
            ((g - b) / safe) % 6,
            np.where(v == g, (b - r) / safe + 2, (r - g) / safe + 4),
        )
        * 60.0
    )
    out = np.full(rgb.shape[:2], INDEX["grey"], dtype=np.int8)
    chromatic = (s >= 0.22) & (v >= 0.2)
    out[~chromatic & (v > 0.82)] = INDEX["white"]
    out[~chromatic & (v <= 0.82) & (v >= 0.3)] = INDEX["grey"]
    out[v < 0.3] = INDEX["black"]
    hue_bands = (
        (0, 12, "red"),
        (12, 40, "orange"),
        (40, 70, "yellow"),
        (70, 170, "green"),
        (170, 255, "blue"),
        (255, 300, "purple"),
        (300, 345, "pink"),
        (345, 361, "red"),
    )
    for lo, hi, name in hue_bands:
        out[chromatic & (v >= 0.3) & (h >= lo) & (h < hi)] = INDEX[name]
    # Dark oranges and reds are what people call brown; pale reds are pink.
    out[chromatic & (h >= 8) & (h < 45) & (v < 0.62) & (v >= 0.3)] = INDEX["brown"]
    out[chromatic & ((h < 12) | (h >= 345)) & (s < 0.62) & (v > 0.8)] = INDEX["pink"]
    # Dark blues are blue too (a night sky), however dark, as long as they are clearly blue.
    out[(v >= 0.12) & (v < 0.3) & (s >= 0.45) & (h >= 200) & (h < 255)] = INDEX["blue"]
    return out


@dataclass(frozen=True)
class ColourMass:
    """How much of a picture is one colour, and the centre of that colour (fractions of the sides)."""

    fraction: float
    cx: float
    cy: float


def masses(rgb: np.ndarray) -> dict[str, ColourMass]:
    labels = classify(rgb)
    h, w = labels.shape
    ys, xs = np.mgrid[0:h, 0:w]
    out = {}
    for name, i in INDEX.items():
        mask = labels == i
        n = int(mask.sum())
        if n:
            out[name] = ColourMass(
                n / (h * w), float(xs[mask].mean() + 0.5) / w, float(ys[mask].mean() + 0.5) / h
            )
        else:
            out[name] = ColourMass(0.0, 0.5, 0.5)
    return out


MIN_OBJECT = 0.006  # about 100 pixels of a 128 x 128 picture: the smallest star the world draws


def colour_drawn(rgb: np.ndarray, colour: str, background: str | None) -> bool:
    """The named colour is there, and more of it than of any other colour the background lacks."""
    seen = masses(rgb)
    ignore = BACKGROUND_COLOURS.get(background or "", frozenset())
    if seen[colour].fraction < MIN_OBJECT:
        return False
    rivals = [m.fraction for name, m in seen.items() if name != colour and name not in ignore]
    return seen[colour].fraction >= max(rivals, default=0.0)


def place_of(rgb: np.ndarray, colour: str) -> tuple[float, float] | None:
    """Where the named colour's centre of mass is, or None when too little of it was drawn."""
    seen = masses(rgb)[colour]
    return (seen.cx, seen.cy) if seen.fraction >= MIN_OBJECT else None


def place_matches(centre: tuple[float, float], place: str) -> bool:
    """Left and right judge x only; top and bottom y only; corners both; centre near the middle."""
    x, y = centre
    words = place.split()
    ok = True
    if "left" in words:
        ok &= x < 0.45
    if "right" in words:
        ok &= x > 0.55
    if "top" in words:
        ok &= y < 0.45
    if "bottom" in words:
        ok &= y > 0.55
    if place == "centre":
        ok &= abs(x - 0.5) < 0.15 and abs(y - 0.5) < 0.15
    return bool(ok)


def background_share(rgb: np.ndarray, background: str) -> float:
    """The share of pixels in the colours a viewer sees in that background."""
    labels = classify(rgb)
    wanted = [INDEX[n] for n in BACKGROUND_COLOURS[background]]
    return float(np.isin(labels, wanted).mean())


def spread(cells: list[np.ndarray]) -> float:
    """How different the cells of a grid are in what they show: the mean total-variation distance
    between their colour histograms (0 for cells of the same colours, 1 for disjoint ones)."""
    hists = []
    for rgb in cells:
        labels = classify(rgb)
        hists.append(np.bincount(labels.ravel(), minlength=len(NAMES)) / labels.size)
    total, pairs = 0.0, 0
    for i in range(len(hists)):
        for j in range(i + 1, len(hists)):
            total += 0.5 * float(np.abs(hists[i] - hists[j]).sum())
            pairs += 1
    return total / max(1, pairs)
