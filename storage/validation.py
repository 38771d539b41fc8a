"""Checks on what callers ask the store to write, before anything is written.

Each refusal names the field and what it accepts, so the bot can pass the message on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Integer

from storage.errors import InvalidInputError
from storage.files import check_job_id
from storage.models import GuildSettings, Job, JobKind, JobStatus

# Columns a caller may set on a job; `id` only at creation, `status` `done` only by `complete_job`.
_JOB_FIELDS = {column.key for column in Job.__table__.columns} - {"id"}
# Integer columns are checked as whole numbers (BigInteger is an Integer too).
_INT_FIELDS = {column.key for column in Job.__table__.columns if isinstance(column.type, Integer)}
_SETTINGS_FIELDS = {column.key for column in GuildSettings.__table__.columns} - {"guild_id"}


def is_int(value: Any) -> bool:
    """A whole number, and not a bool (True is an int to Python, never an id to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_keywords(method: str, given: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Refuse a misspelt keyword of a `**kwargs: Unpack[...]` method as Python refuses one of a
    plain signature (the type checker does not see every caller)."""
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise TypeError(f"{method}() got unexpected keyword argument(s): {', '.join(unknown)}")


def check_job_fields(fields: Mapping[str, Any], *, creating: bool) -> None:
    """Refuse unknown fields and malformed values with a message that names the field."""
    allowed = _JOB_FIELDS | ({"id"} if creating else set())
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise InvalidInputError(f"unknown job field(s): {', '.join(unknown)}")
    if "id" in fields:
        check_job_id(fields["id"])
    if "kind" in fields and fields["kind"] not in {kind.value for kind in JobKind}:
        raise InvalidInputError(
            f"unknown job kind {fields['kind']!r}; expected one of {[kind.value for kind in JobKind]}"
        )
    if "status" in fields:
        status = fields["status"]
        if status not in {value.value for value in JobStatus}:
            raise InvalidInputError(
                f"unknown job status {status!r}; expected one of {[value.value for value in JobStatus]}"
            )
        if status == JobStatus.DONE:
            raise InvalidInputError("a job becomes 'done' only through complete_job, with its images")
    for name in _INT_FIELDS & set(fields):
        value = fields[name]
        if value is None and name not in {"user_id", "attempts"}:
            continue
        if not is_int(value):
            raise InvalidInputError(f"job field {name} must be a whole number, got {value!r}")
    if fields.get("parent_index") is not None and not 0 <= fields["parent_index"] <= 3:
        raise InvalidInputError(f"parent_index must be a grid cell 0-3, got {fields['parent_index']}")
    for name in ("width", "height"):
        if fields.get(name) is not None and fields[name] <= 0:
            raise InvalidInputError(f"job {name} must be positive, got {fields[name]}")
    for name in ("params", "timings"):
        if name in fields and not isinstance(fields[name], dict):
            raise InvalidInputError(f"job field {name} must be a dict, got {type(fields[name]).__name__}")


def check_settings_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validate guild settings by name; returns them cleaned (channel lists de-duplicated)."""
    unknown = sorted(set(fields) - _SETTINGS_FIELDS)
    if unknown:
        raise InvalidInputError(
            f"unknown guild setting(s): {', '.join(unknown)}; known: {sorted(_SETTINGS_FIELDS)}"
        )
    clean: dict[str, Any] = {}
    for name, value in fields.items():
        if name.endswith("_channel_ids"):
            if not isinstance(value, list | tuple | set) or not all(is_int(v) for v in value):
                raise InvalidInputError(f"{name} must be a list of channel ids")
            clean[name] = list(dict.fromkeys(value))
        elif name in ("author_only_buttons", "allow_stealth"):
            if not isinstance(value, bool):
                raise InvalidInputError(f"{name} must be true or false, got {value!r}")
            clean[name] = value
        elif name == "fast_seconds":
            if value is not None and (not is_int(value) or value < 0):
                raise InvalidInputError(f"the Fast budget must be 0 or more seconds, or unset; got {value!r}")
            clean[name] = value
        elif name == "fast_period_hours":
            if value is not None and (not is_int(value) or not 1 <= value <= 8760):
                raise InvalidInputError(f"the Fast period must be 1 to 8760 hours, or unset; got {value!r}")
            clean[name] = value
        elif name == "fast_role_seconds":
            if value is not None and (
                not isinstance(value, dict)
                or not all(str(k).isdigit() and is_int(v) and v >= 0 for k, v in value.items())
            ):
                raise InvalidInputError(
                    f"fast_role_seconds maps role ids to 0 or more seconds; got {value!r}"
                )
            clean[name] = {str(k): v for k, v in value.items()} if value is not None else None
        elif name.startswith("max_"):
            if value is not None and (not is_int(value) or value < 1):
                raise InvalidInputError(
                    f"{name} must be a whole number of at least 1, or unset; got {value!r}"
                )
            clean[name] = value
        else:
            if value is not None and not is_int(value):
                raise InvalidInputError(f"{name} must be an id (a whole number) or unset; got {value!r}")
            clean[name] = value
    return clean
