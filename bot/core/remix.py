"""Remix: an edited prompt drives a re-roll, a variation, a zoom or a pan, as in Midjourney.

With Remix on, those buttons open the prompt for editing; the console takes `--prompt TEXT`.
The new job keeps its parent (the lineage is unchanged) and records the prompt it was remixed
from (`params["remix_of"]`), so `imagine show` and `/show` can print both.

Not every parameter means something to every action: a variation keeps its image's size, a pan
keeps one side and extends the other. A parameter the action cannot honour is refused with a
sentence when the edit *changes* it; keeping the parent's value, or deleting it, is always fine
(Midjourney's modal shows the whole prompt, parameters included, and most people leave them).
"""

from __future__ import annotations

from typing import Any

from bot.core.rules import Action, _sets
from bot.prompt import DEFAULTS, Prompt, PromptError, check_prompt_length, parse_prompt
from storage.models import JobKind

REMIX_KEY = "remix_of"  # params key: the prompt the job was remixed from

# What each remixable kind is called in a refusal, and the parameters it cannot take from an
# edited prompt (with the reason, the end of the sentence).
# Reference pictures are fetched and stored when a prompt is first imagined; a remix reuses the
# parent's, so it cannot point at new ones or weigh them differently.
_REFERENCES = {
    "style_ref": "the reference pictures are fetched by a new /imagine",
    "omni_ref": "the reference pictures are fetched by a new /imagine",
    "style_weight": "the reference pictures keep their weights in a remix",
    "omni_weight": "the reference pictures keep their weights in a remix",
}
_NOT_FOR_DERIVED = {
    **_REFERENCES,
    "chaos": "the four images come from one picture, not four fresh starts",
    "weird": "it only shapes a brand-new grid",
    "stop": "it only shapes a brand-new grid",
    "repeat": "one click makes one job",
    "image_weight": "it only weighs an image prompt of a new grid",
}
_NOT_FOR_OUTPAINT = {
    **_NOT_FOR_DERIVED,
    "stylize": "the new area follows the picture it extends",
    "style": "the new area follows the picture it extends",
    "tile": "a tiled picture cannot be extended",
}
_RULES: dict[str, tuple[str, dict[str, str]]] = {
    JobKind.IMAGINE: ("a re-roll", {**_REFERENCES, "repeat": "one click makes one job"}),
    JobKind.REROLL: ("a re-roll", {**_REFERENCES, "repeat": "one click makes one job"}),
    JobKind.VARY: ("a variation", {**_NOT_FOR_DERIVED, "aspect": "a variation keeps its image's size"}),
    JobKind.VARY_SUBTLE: (
        "a variation",
        {**_NOT_FOR_DERIVED, "aspect": "a variation keeps its image's size"},
    ),
    JobKind.VARY_STRONG: (
        "a variation",
        {**_NOT_FOR_DERIVED, "aspect": "a variation keeps its image's size"},
    ),
    JobKind.ZOOM: ("a zoom", _NOT_FOR_OUTPAINT),
    JobKind.PAN: (
        "a pan",
        {**_NOT_FOR_OUTPAINT, "aspect": "a pan keeps one side of the image and extends it in one direction"},
    ),
}
REMIX_ACTIONS = frozenset(
    {Action.REROLL, Action.VARY, Action.VARY_SUBTLE, Action.VARY_STRONG, Action.ZOOM, Action.PAN}
)
# A value away from the default for each parameter, to ask the parser whether the edited prompt
# types the parameter itself (`--ar 1:1` typed is a change; `--ar` deleted is not).
_PROBES: dict[str, Any] = {
    "aspect": (2, 1),
    "chaos": 1,
    "weird": 1,
    "stop": 50,
    "repeat": 2,
    "image_weight": 1.0,
    "stylize": 1,
    "style": "raw",
    "tile": True,
    "style_ref": "https://example.com/probe.png",
    "omni_ref": "https://example.com/probe.png",
    "style_weight": 50,
    "omni_weight": 50,
}
_SPELLING = {
    "aspect": "--ar",
    "image_weight": "--iw",
    "negative": "--no",
    "version": "--v",
    "style_ref": "--sref",
    "omni_ref": "--oref",
    "style_weight": "--sw",
    "omni_weight": "--ow",
}


def remixable(kind: str) -> bool:
    """Whether a job of this kind can be made again from an edited prompt."""
    return kind in _RULES


def remix_prompt(parent: Prompt, text: str, kind: str) -> Prompt:
    """The edited prompt, parsed and checked against what a job of `kind` can use.

    Raises `PromptError` naming the first parameter the action cannot take; nothing is made.
    """
    if kind not in _RULES:
        raise PromptError("only a re-roll, V1-V4, Vary, Zoom Out and Pan take an edited prompt (Remix)")
    text = " ".join(text.split())
    if not text:
        raise PromptError("the remixed prompt is empty; describe the image you want")
    has_image = bool(parent.image_urls) or parent.image_weight is not None
    prompt = parse_prompt(text, has_image=has_image)
    check_prompt_length(prompt)
    what, fixed = _RULES[kind]
    for name, why in fixed.items():
        value: Any = getattr(prompt, name)
        typed = value != DEFAULTS[name] or _sets(text, name, _PROBES[name], has_image)
        if value != getattr(parent, name) and typed:
            flag = _SPELLING.get(name, f"--{name.replace('_', '-')}")
            raise PromptError(
                f"`{flag}` does not apply to {what} ({why}); take it out of the remixed prompt.", name
            )
    return prompt


__all__ = ["REMIX_ACTIONS", "REMIX_KEY", "remix_prompt", "remixable"]
