"""Per-user job limits and the error a user sees at the limit (the dispatcher enforces them)."""

from __future__ import annotations

from dataclasses import dataclass


class LimitError(Exception):
    """The user has too many jobs waiting; the message says how many and what the limit is."""


@dataclass(frozen=True)
class Limits:
    """Per-user limits, Midjourney's defaults: 3 running, 10 waiting."""

    max_running_per_user: int = 3
    max_queued_per_user: int = 10

    def with_overrides(self, running: int | None, queued: int | None) -> Limits:
        """These limits with a guild's own in place of each one it set (None or 0: not set)."""
        return Limits(running or self.max_running_per_user, queued or self.max_queued_per_user)
