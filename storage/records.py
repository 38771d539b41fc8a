"""The typed arguments of the store's write methods: which fields a caller may set, and their types.

`Store.create_job(**fields)`, `create_jobs([...])`, `update_job(job_id, **fields)` and
`update_guild_settings(guild_id, **fields)` take these TypedDicts (as `Unpack[...]` for keyword
arguments), so a type checker refuses a misspelt or mistyped field at the call site; the store
still checks every value at run time (`storage/validation.py`), because callers outside the type
checker (a console argument, a migration script) reach it too.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias, TypedDict

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
