"""Ban durations and dates as moderators type them and members read them.

`parse_duration("7d")`, `parse_when("2026-01-31" or "7d", now)`, `format_duration`, and
`format_until` (a ban's end in UTC); no Discord, no store.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta


def format_until(until: datetime | None) -> str:
    """A ban's end as members read it: a UTC date and time, or "until lifted"."""
    if until is None:
        return "until a moderator lifts it"
    if until.tzinfo is None:  # SQLite hands naive datetimes back; they are stored as UTC
        until = until.replace(tzinfo=UTC)
    return f"until {until.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


# ---------------------------------------------------------------------------------------------
# Ban durations
# ---------------------------------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+)\s*(mo|[smhdwy])", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "mo": 30 * 86400, "y": 365 * 86400}
_PERMANENT = {"", "permanent", "perm", "forever", "never", "none", "0"}
MAX_BAN = timedelta(days=10 * 365)


def parse_duration(text: str | None) -> timedelta | None:
    """A ban length such as ``30m``, ``12h``, ``7d``, ``2w``, ``1d12h``; None means permanent.

    Raises `ValueError` naming the accepted forms for anything else.
    """
    value = (text or "").strip().lower()
    if value in _PERMANENT:
        return None
    compact = value.replace(" ", "")
    parts = _DURATION_PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(
            f"Can't read the duration {text!r}: use a number and a unit, like 30m, 12h, 7d, 2w, 3mo or "
            "1d12h (s, m, h, d, w, mo, y), or leave it out for a permanent ban."
        )
    total = timedelta(seconds=sum(int(n) * _UNIT_SECONDS[u] for n, u in parts))
    if total <= timedelta(0):
        raise ValueError("The duration must be longer than zero; leave it out for a permanent ban.")
    if total > MAX_BAN:
        raise ValueError("The longest timed ban is 10 years; leave the duration out for a permanent ban.")
    return total


def parse_when(text: str | None, now: datetime, *, end: bool = False) -> datetime | None:
    """A history bound: ``2026-05-01``, ``2026-05-01 14:30`` (UTC), or a length of time ago
    (``7d``, ``12h``). A bare date as the end of a range means the end of that day."""
    value = (text or "").strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d"):
        try:
            when = datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
        return when + timedelta(days=1) if end and fmt == "%Y-%m-%d" else when
    try:
        ago = parse_duration(value)
    except ValueError:
        ago = None
    if ago is None:
        raise ValueError(
            f"Can't read the date {value!r}: use YYYY-MM-DD, YYYY-MM-DD HH:MM (UTC), "
            "or a time ago like 7d or 12h."
        )
    return now - ago


def format_duration(delta: timedelta) -> str:
    """`timedelta(days=1, hours=12)` -> ``1d 12h``: how a duration is echoed back."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"
