"""Fast and Relax: each member's Fast time per server, and which mode a job runs in.

A server may give each member a Fast budget in GPU-seconds per period (`fast_seconds`, every
`fast_period_hours`, 720 = 30 days unless set; a role can have its own budget, and a member
with several roles gets the largest). The engine's measured time of each Fast (or Turbo) job
is spent from it; moderators can grant more for the current period. Relax jobs cost nothing and
wait behind every Fast job (the dispatcher's second lane, round-robin among Relax users).

A job asks for a mode with `--fast`, `--relax` or `--turbo`, else takes the member's /settings
mode. A Fast or Turbo job of a member with no time left runs in Relax instead, with a notice
saying so and when the time comes back: never silently. Without a budget (the default, and the
console) Fast is unlimited. Turbo (fewer steps, so quicker and coarser) needs the operator's
`IMAGINE_TURBO`.

Periods are fixed windows counted from 1970-01-01 UTC, so every member's period of one server
starts and resets at the same moment, with no job needed to open one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.ports import JobStore
from bot.prompt import PromptError
from storage.models import GuildSettings, Job, MemberSettings

log = logging.getLogger(__name__)

DEFAULT_PERIOD_HOURS = 720
SPEED_KEY = "speed"  # params key: the mode the job runs in
NOTICE_KEY = "speed_notice"  # params key: why it runs in another mode than asked
CHARGED = ("fast", "turbo")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FastBalance:
    """A member's Fast time on a server now. `budget_s` None: unlimited (no budget set)."""

    budget_s: float | None
    used_s: float
    granted_s: float
    period_start: datetime
    resets_at: datetime

    @property
    def left_s(self) -> float | None:
        if self.budget_s is None:
            return None
        return max(0.0, self.budget_s + self.granted_s - self.used_s)

    @property
    def exhausted(self) -> bool:
        left = self.left_s
        return left is not None and left <= 0.0


def period_bounds(settings: GuildSettings, now: datetime) -> tuple[datetime, datetime]:
    """The start and end (the reset) of the budget period `now` falls in."""
    length = timedelta(hours=settings.fast_period_hours or DEFAULT_PERIOD_HOURS)
    periods = (now - _EPOCH) // length
    start = _EPOCH + periods * length
    return start, start + length


def budget_for(settings: GuildSettings, role_ids: tuple[int, ...]) -> float | None:
    """The member's budget: the largest of their roles' own budgets, else the server's."""
    per_role = settings.fast_role_seconds or {}
    theirs = [float(per_role[str(role)]) for role in role_ids if str(role) in per_role]
    if theirs:
        return max(theirs)
    return float(settings.fast_seconds) if settings.fast_seconds is not None else None


async def balance(
    store: JobStore, user_id: int, guild_id: int, role_ids: tuple[int, ...] = (), now: datetime | None = None
) -> FastBalance:
    settings = await store.guild_settings(guild_id)
    start, end = period_bounds(settings, now or datetime.now(UTC))
    usage = await store.fast_usage(user_id, guild_id, start)
    return FastBalance(
        budget_for(settings, role_ids), float(usage.used_s or 0.0), float(usage.granted_s or 0.0), start, end
    )


def describe_time(seconds: float) -> str:
    """`1h 5m`, `4m 10s`, `12s`: GPU time as a member reads it."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def requested_speed(asked: str | None, member: MemberSettings | None, turbo_allowed: bool) -> str:
    """The mode a job asks for: the prompt's, else the member's setting. Refuses Turbo when off."""
    speed = asked or (member.speed if member is not None else None) or "fast"
    if speed == "turbo" and not turbo_allowed:
        if asked == "turbo":
            raise PromptError(
                "`--turbo` is off on this bot (the operator has not set IMAGINE_TURBO).", "speed"
            )
        return "fast"  # a /settings choice made while Turbo was on; the operator turned it off since
    return speed


async def decide_speed(
    store: JobStore,
    speed: str,
    user_id: int,
    guild_id: int | None,
    role_ids: tuple[int, ...] = (),
) -> tuple[str, str | None]:
    """The mode a job runs in and, when it is not the one asked for, the notice that says why."""
    if speed not in CHARGED or guild_id is None:
        return speed, None
    current = await balance(store, user_id, guild_id, role_ids)
    if not current.exhausted:
        return speed, None
    when = int(current.resets_at.timestamp())
    return "relax", (
        f"Your Fast time on this server is used up, so this job runs in Relax mode (it waits behind "
        f"Fast jobs); it comes back <t:{when}:R> ({current.resets_at:%Y-%m-%d %H:%M} UTC)."
    )


async def charge(store: JobStore, job: Job, engine_s: float, now: datetime | None = None) -> None:
    """Spend a finished Fast or Turbo job's engine time from its author's budget on its server."""
    if job.guild_id is None or (job.params or {}).get(SPEED_KEY, "fast") not in CHARGED:
        return
    settings = await store.guild_settings(job.guild_id)
    start, _ = period_bounds(settings, now or datetime.now(UTC))
    await store.add_fast_usage(job.user_id, job.guild_id, start, used_s=max(0.0, float(engine_s)))


__all__ = [
    "NOTICE_KEY",
    "SPEED_KEY",
    "FastBalance",
    "balance",
    "charge",
    "decide_speed",
    "describe_time",
    "requested_speed",
]
