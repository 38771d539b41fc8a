"""The Midjourney prompt language: what a member types after `/imagine`, read into a `Prompt`.

    https://example.com/ref.png a lighthouse at dusk::2 storm::-0.5 --ar 16:9 --seed 42 --no people

reads as: image URLs first, then the description (with `::` multi-prompt weights), then the
parameters. `{a, b}` permutations are expanded into several prompt strings *before* parsing, by
`expand_permutations`. Every mistake raises `PromptError`, whose message is written for the person
who typed the prompt: it names the parameter, the allowed range and, for a misspelt parameter, the
closest known one. Nothing here imports torch, diffusers or discord: the bot parses prompts on its
event loop and must stay light.

The language is split by responsibility: `parsed` (the `Prompt` value, `PromptError`, the length
limits), `parameters` (the `--parameter` table and its reading), `parser` (`parse_prompt`),
`permutations` (`expand_permutations`) and `vocabulary` (`unknown_words`). Import from
`bot.prompt`, which keeps the public names in one place.
"""

from __future__ import annotations

from bot.prompt.parameters import DEFAULTS, PARAMETER_FIELDS, PARAMETER_NAMES, STYLES
from bot.prompt.parsed import (
    MAX_INPUT_LENGTH,
    MAX_PROMPT_LENGTH,
    Prompt,
    PromptError,
    check_prompt_length,
)
from bot.prompt.parser import parse_prompt
from bot.prompt.permutations import MAX_PERMUTATIONS, expand_permutations
from bot.prompt.vocabulary import unknown_words
from engine.api import dimensions_for  # the engine warms up the same sizes that `--ar` asks for

__all__ = [
    "DEFAULTS",
    "MAX_INPUT_LENGTH",
    "MAX_PERMUTATIONS",
    "MAX_PROMPT_LENGTH",
    "PARAMETER_FIELDS",
    "PARAMETER_NAMES",
    "STYLES",
    "Prompt",
    "PromptError",
    "check_prompt_length",
    "dimensions_for",
    "expand_permutations",
    "parse_prompt",
    "unknown_words",
]
