"""The typed arguments of the store's write methods: which fields a caller may set, and their types.

`Store.create_job(**fields)`, `create_jobs([...])`, `update_job(job_id, **fields)`,
`update_guild_settings(guild_id, **fields)`, `complete_job(job_id, images, seeds, **extra)` and
`add_fast_usage(user_id, guild_id, period_start, **seconds)` take these TypedDicts (as
`Unpack[...]` for keyword arguments), so a type checker refuses a misspelt or mistyped field at
the call site, and the store and its Protocols in `bot.core.ports` declare them once; the store
still checks every value at run time (`storage/validation.py`), because callers outside the type
checker (a console argument, a migration script) reach it too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TypeAlias, TypedDict

from storage.files import ImageLike

# A JSON value as the store keeps it in a JSON column (job params, audit details): what crosses
# the seam between the bot and the store is typed as JSON, never `Any`.
JSONValue: TypeAlias = str | int | float | bool | list["JSONValue"] | dict[str, "JSONValue"] | None
JSONObject: TypeAlias = dict[str, JSONValue]


class JobFields(TypedDict, total=False):
    """The columns of a `Job` a caller may set (`id` only when creating)."""

    id: str
    kind: str
    status: str
    source: str
    user_id: int
    user_name: str
    guild_id: int | None
    channel_id: int | None
    message_id: int | None
    raw_prompt: str
    prompt: str
    params: JSONObject  #: the parsed prompt, seeds, action details
    model: str
    width: int | None
    height: int | None
    seed: int | None
    parent_id: str | None
    parent_index: int | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queue_position: int | None
    attempts: int
    error: str | None
    timings: dict[str, float]  # seconds per phase
    hidden: bool
    hidden_by: int | None
    hidden_reason: str | None
    deleted: bool
    blocked_rule: str | None
    owner_id: str | None
    lease_until: datetime | None


class GuildSettingsFields(TypedDict, total=False):
    """The per-server settings a moderator may change."""

    allowed_channel_ids: list[int]
    spoiler_channel_ids: list[int]
    author_only_buttons: bool
    moderator_role_id: int | None
    log_channel_id: int | None
    max_running_per_user: int | None
    max_queued_per_user: int | None
    fast_seconds: int | None
    fast_period_hours: int | None
    fast_role_seconds: dict[str, int] | None
    allow_stealth: bool


class MemberSettingsFields(TypedDict, total=False):
    """A member's /settings on one server (`Store.update_member_settings`)."""

    remix: bool
    stylize: int | None  # None: the prompt language's default
    raw: bool
    variation: str  # high | low
    version: str | None
    speed: str  # fast | relax | turbo
    lora: str | None  # an installed LoRA style's name
    stealth: bool  # only honoured where the server allows Stealth


class Completion(TypedDict, total=False):
    """What `Store.complete_job` takes besides the images and their seeds."""

    grid: ImageLike | None  # the 2x2 grid of a four-image job
    timings: dict[str, float] | None  # seconds per phase, merged into the job's
    owner_id: str | None  # refused when another live process holds the job: that one writes it
    # The PNG text chunks of each picture (the images, then the grid), e.g. how it was made
    # (`storage.png_text`); a picture given as `EncodedImage` loses any it had.
    texts: Sequence[Mapping[str, str]] | None


class FastSeconds(TypedDict, total=False):
    """What `Store.add_fast_usage` adds to a member's Fast period (0 when left out)."""

    used_s: float  # engine seconds a job spent
    granted_s: float  # seconds a moderator granted
