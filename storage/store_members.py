"""`MemberMethods`, the members' half of `Store`: each member's /settings and Fast time per server.

A mixin split off by subject, like `ModerationMethods`; every method is one unit of work.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TypeVar, Unpack

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidInputError
from storage.models import FastUsage, MemberSettings, PromptOption
from storage.records import FastSeconds, MemberSettingsFields
from storage.units import UnitsOfWork, stored_with
from storage.validation import check_keywords, is_int

T = TypeVar("T")

NO_GUILD = 0  # the guild id of settings made outside any server (the console, a DM)
VARIATIONS = ("high", "low")
SPEEDS = ("fast", "relax", "turbo")
OPTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
MAX_OPTION_CHARS = 1000
MAX_OPTIONS = 50
_FIELDS = frozenset(MemberSettingsFields.__annotations__)


def default_member_settings(user_id: int, guild_id: int | None) -> MemberSettings:
    """The settings of a member who never changed any (not stored)."""
    return MemberSettings(
        user_id=user_id,
        guild_id=guild_id or NO_GUILD,
        remix=False,
        stylize=None,
        raw=False,
        variation="high",
        version=None,
        speed="fast",
        lora=None,
        stealth=False,
    )


def check_member_fields(fields: MemberSettingsFields) -> MemberSettingsFields:
    """Refuse an unknown field or a value of the wrong type, naming it."""
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise InvalidInputError(f"unknown member setting(s): {', '.join(unknown)}; known: {sorted(_FIELDS)}")
    for name, value in fields.items():
        if name in ("remix", "raw", "stealth") and not isinstance(value, bool):
            raise InvalidInputError(f"{name} must be true or false, got {value!r}")
    stylize = fields.get("stylize")
    if stylize is not None and (not is_int(stylize) or not 0 <= stylize <= 1000):
        raise InvalidInputError(f"stylize must be a whole number from 0 to 1000, or unset; got {stylize!r}")
    if "variation" in fields and fields["variation"] not in VARIATIONS:
        raise InvalidInputError(f"variation must be high or low, got {fields['variation']!r}")
    if "speed" in fields and fields["speed"] not in SPEEDS:
        raise InvalidInputError(f"speed must be fast, relax or turbo, got {fields['speed']!r}")
    for name in ("version", "lora"):
        value = fields.get(name)
        if value is not None and (not isinstance(value, str) or not 0 < len(value) <= 64):
            raise InvalidInputError(f"{name} must be a name of 1 to 64 characters, or unset; got {value!r}")
    return fields


class MemberMethods(UnitsOfWork):
    """Store methods for members' settings; see `Store` for the unit-of-work rules they follow."""

    async def member_settings(self, user_id: int, guild_id: int | None) -> MemberSettings:
        """The member's settings on this server; defaults (not stored) when they changed none."""

        async def work(session: AsyncSession) -> MemberSettings:
            row = await session.get(MemberSettings, (user_id, guild_id or NO_GUILD))
            return row or default_member_settings(user_id, guild_id)

        return await self._read(work)

    async def update_member_settings(
        self, user_id: int, guild_id: int | None, **fields: Unpack[MemberSettingsFields]
    ) -> MemberSettings:
        clean = check_member_fields(fields)

        async def work(session: AsyncSession) -> MemberSettings:
            row = await session.get(MemberSettings, (user_id, guild_id or NO_GUILD))
            return await stored_with(session, row, lambda: default_member_settings(user_id, guild_id), clean)

        return await self._write(work)

    async def reset_member_settings(self, user_id: int, guild_id: int | None) -> MemberSettings:
        """Back to every default: the row goes."""

        async def work(session: AsyncSession) -> MemberSettings:
            row = await session.get(MemberSettings, (user_id, guild_id or NO_GUILD))
            if row is not None:
                await session.delete(row)
                await session.flush()
            return default_member_settings(user_id, guild_id)

        return await self._write(work)

    async def fast_usage(self, user_id: int, guild_id: int, period_start: datetime) -> FastUsage:
        """The member's Fast time in the period that starts at `period_start` (zeros when none)."""

        async def work(session: AsyncSession) -> FastUsage:
            row = await session.get(FastUsage, (user_id, guild_id, period_start))
            return row or FastUsage(
                user_id=user_id, guild_id=guild_id, period_start=period_start, used_s=0.0, granted_s=0.0
            )

        return await self._read(work)

    async def add_fast_usage(
        self, user_id: int, guild_id: int, period_start: datetime, **seconds: Unpack[FastSeconds]
    ) -> FastUsage:
        """Add spent engine seconds or granted seconds to the member's period (one transaction)."""
        check_keywords("add_fast_usage", seconds, FastSeconds.__optional_keys__)
        used_s, granted_s = seconds.get("used_s", 0.0), seconds.get("granted_s", 0.0)
        for name, value in (("used_s", used_s), ("granted_s", granted_s)):
            if not isinstance(value, int | float) or not 0 <= value < 1e9:
                raise InvalidInputError(f"{name} must be 0 or more seconds, got {value!r}")

        async def work(session: AsyncSession) -> FastUsage:
            row = await session.get(FastUsage, (user_id, guild_id, period_start))
            if row is None:
                row = FastUsage(
                    user_id=user_id, guild_id=guild_id, period_start=period_start, used_s=0.0, granted_s=0.0
                )
                session.add(row)
            row.used_s = float(row.used_s or 0.0) + float(used_s)
            row.granted_s = float(row.granted_s or 0.0) + float(granted_s)
            await session.flush()
            return row

        return await self._write(work)

    async def prompt_options(self, user_id: int) -> dict[str, str]:
        """The member's `/prefer option`s, name -> parameters, by name."""

        async def work(session: AsyncSession) -> dict[str, str]:
            rows = await session.scalars(
                select(PromptOption).where(PromptOption.user_id == user_id).order_by(PromptOption.name)
            )
            return {row.name: row.value for row in rows}

        return await self._read(work)

    async def set_prompt_option(self, user_id: int, name: str, value: str | None) -> bool:
        """Set (or, with `value` None, remove) one option; True when something changed."""
        if not OPTION_NAME.fullmatch(name or ""):
            raise InvalidInputError(
                f"an option name is 1-32 lower-case letters, digits, _ or -; got {name!r}"
            )
        if value is not None and not 0 < len(value) <= MAX_OPTION_CHARS:
            raise InvalidInputError(f"an option is 1 to {MAX_OPTION_CHARS} characters, got {len(value)}")

        async def work(session: AsyncSession) -> bool:
            row = await session.get(PromptOption, (user_id, name))
            if value is None:
                if row is None:
                    return False
                await session.delete(row)
                return True
            if row is None:
                count = await session.scalar(
                    select(func.count()).select_from(PromptOption).where(PromptOption.user_id == user_id)
                )
                if (count or 0) >= MAX_OPTIONS:
                    raise InvalidInputError(f"you have {MAX_OPTIONS} options already; remove one first")
                session.add(PromptOption(user_id=user_id, name=name, value=value))
            else:
                row.value = value
            await session.flush()
            return True

        return await self._write(work)


__all__ = ["NO_GUILD", "VARIATIONS", "MemberMethods", "default_member_settings"]
