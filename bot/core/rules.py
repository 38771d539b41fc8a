"""Job kinds and rules: who asks (`Requester`), what a button or subcommand does (`Action`), the
errors a user is shown about an earlier job, per-cell seeds, and a user's `/prefer` suffix.

Pure rules with no I/O, shared by the job service (`bot.core.jobs`) and every front end.
"""

import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.core.moderation import check_submission
from bot.core.ports import ModerationStore
from bot.prompt import (
    DEFAULTS,
    MAX_PERMUTATIONS,
    PARAMETER_FIELDS,
    Prompt,
    PromptError,
    check_prompt_length,
    expand_permutations,
    parse_prompt,
)
from storage.models import Job, JobKind

log = logging.getLogger(__name__)

log = logging.getLogger(__name__)

SEED_LIMIT = 2**32
GRID_CELLS = 4
CONSOLE_QUEUE_LIMIT = 200
PAN_DIRECTIONS = ("left", "right", "up", "down")
_OUTPAINT_KINDS = (JobKind.ZOOM, JobKind.PAN, JobKind.SQUARE)
PARSED_KEY = "parsed_prompt"  # params key of the prompt as parsed when the job was accepted
_EXPLICIT_ASPECT = re.compile(r"(?:--|—)(?:ar|aspect)\b", re.IGNORECASE)


def prompts_with_suffix(text: str, suffix: str = "", *, has_image: bool = False) -> list[Prompt]:
    """The prompts `text` expands to, each with the user's `/prefer suffix` added.

    The suffix is added the way Midjourney adds it, at the end, but a parameter the prompt sets
    itself wins over the suffix's copy of it (a member who types `--ar 1:1` with a `--ar 16:9`
    suffix means 1:1, not "given twice"); `--no` terms from both add up. Words in the suffix
    extend the description. `{a, b}` permutations in the prompt and in the suffix multiply.
    `has_image`: an attachment comes with the prompt (so `--iw` has something to weigh).
    """
    prompt_texts = expand_permutations(text)
    if not suffix:
        return [parse_prompt(t, has_image=has_image) for t in prompt_texts]
    suffix_texts = expand_permutations(suffix)
    count = len(prompt_texts) * len(suffix_texts)
    if count > MAX_PERMUTATIONS:
        raise PromptError(
            f"The `{{…}}` permutations of the prompt and your /prefer suffix make {count} prompts; "
            f"the limit is {MAX_PERMUTATIONS}. Use fewer options or fewer groups."
        )
    return [_add_suffix(p, s, has_image) for p in prompt_texts for s in suffix_texts]


def _add_suffix(prompt_text: str, suffix_text: str, has_image: bool) -> Prompt:
    own = parse_prompt(prompt_text, has_image=has_image)
    # The suffix read as if typed after the prompt's description: its words join the
    # description and its parameters are checked by the same parser as any prompt's.
    combined = parse_prompt(" ".join([*own.image_urls, own.text, suffix_text]), has_image=has_image)
    kept: dict[str, Any] = {}
    for name in PARAMETER_FIELDS:
        value = getattr(combined, name)
        if name == "negative":
            kept[name] = list(dict.fromkeys([*own.negative, *value]))
        elif value == DEFAULTS[name] or _sets(prompt_text, name, value, has_image):
            kept[name] = getattr(own, name)  # the suffix leaves it alone, or the prompt wins
    merged = dataclasses.replace(combined, **kept)
    check_prompt_length(merged)
    return merged


def _sets(prompt_text: str, name: str, value: Any, has_image: bool) -> bool:
    """Whether the prompt sets parameter `name` itself (even to its default value).

    Asked of the parser: the prompt with the suffix's value of `name` added is refused as
    "given twice" exactly when the prompt already gives it, under any of its spellings.
    """
    spelled = Prompt(text="x", **{name: value}).parameters
    try:
        parse_prompt(f"{prompt_text} {spelled}", has_image=has_image)
    except PromptError as exc:
        return exc.parameter == name
    return False


def accepted_prompt(job: Job) -> Prompt:
    """The prompt a job was accepted with, as it was parsed then (kept in `params`).

    Rows from before that was kept are read from their canonical text, which round-trips."""
    parsed = (job.params or {}).get(PARSED_KEY)
    return Prompt.from_dict(parsed) if parsed else parse_prompt(job.prompt, has_image=True)


def cell_seed(seed: int, index: int) -> int:
    """The seed cell `index` of a grid with seed `seed` draws with."""
    return (seed + index) % SEED_LIMIT


@dataclass(frozen=True)
class Requester:
    """Who asks: the author of the job rows and the subject of bans and limits."""

    user_id: int
    user_name: str
    guild_id: int | None = None
    channel_id: int | None = None
    source: str = "discord"  # discord | console
    role_ids: tuple[int, ...] = ()  # the member's roles on the server (per-role Fast budgets)


class Action(StrEnum):
    """What a button or a console subcommand does to an earlier job."""

    UPSCALE = "upscale"  # U1-U4: separate a grid cell (no engine work)
    REROLL = "reroll"  # the same prompt (or action) again with a new seed
    VARY = "vary"  # V1-V4: Midjourney's default (strong) variation of a grid cell
    VARY_SUBTLE = "vary_subtle"
    VARY_STRONG = "vary_strong"
    UPSCALE_SUBTLE = "upscale_subtle"  # 2x
    UPSCALE_CREATIVE = "upscale_creative"  # 2x
    ZOOM = "zoom"
    PAN = "pan"
    SQUARE = "square"


class JobError(ValueError):
    """A request about an earlier job cannot be done; the message says why, in the user's terms."""


class UnknownJobError(JobError):
    pass


class JobHiddenError(JobError):
    pass


class JobNotDoneError(JobError):
    pass


class CellIndexError(JobError):
    pass


ModerationCheck = Callable[[ModerationStore, int, int | None, list[str]], Awaitable[None]]


def _default_moderation() -> ModerationCheck:

    return check_submission
