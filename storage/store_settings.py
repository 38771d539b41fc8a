"""The settings part of `Store`: each server's settings and each member's `/prefer` suffix.

A mixin of `Store` (storage/store.py), split off by subject; it uses the store's units of work
(`UnitsOfWork`).
"""

from __future__ import annotations

from typing import Unpack

from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidInputError
from storage.models import GuildSettings, UserPrefs
from storage.records import GuildSettingsFields
from storage.repositories import SettingsRepository
from storage.units import UnitsOfWork, stored_with
from storage.validation import check_settings_fields

MAX_SUFFIX_CHARS = 1000


class SettingsMethods(UnitsOfWork):
    """Store methods for settings; see `Store` for the unit-of-work rules they follow."""

    @staticmethod
    def _default_settings(guild_id: int) -> GuildSettings:
        return GuildSettings(
            guild_id=guild_id,
            allowed_channel_ids=[],
            spoiler_channel_ids=[],
            author_only_buttons=False,
            moderator_role_id=None,
            log_channel_id=None,
            max_running_per_user=None,
            max_queued_per_user=None,
            fast_seconds=None,
            fast_period_hours=None,
            fast_role_seconds=None,
            allow_stealth=False,
        )

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """The guild's settings; defaults (not stored) when nobody changed any."""

        async def work(session: AsyncSession) -> GuildSettings:
            return await SettingsRepository(session).guild(guild_id) or self._default_settings(guild_id)

        return await self._read(work)

    async def update_guild_settings(
        self, guild_id: int, **fields: Unpack[GuildSettingsFields]
    ) -> GuildSettings:
        clean = check_settings_fields(fields)

        async def work(session: AsyncSession) -> GuildSettings:
            settings = await SettingsRepository(session).guild(guild_id)
            return await stored_with(session, settings, lambda: self._default_settings(guild_id), clean)

        return await self._write(work)

    async def user_prefs(self, user_id: int) -> UserPrefs:
        async def work(session: AsyncSession) -> UserPrefs:
            return await SettingsRepository(session).user(user_id) or UserPrefs(user_id=user_id, suffix="")

        return await self._read(work)

    async def set_user_suffix(self, user_id: int, suffix: str) -> UserPrefs:
        """The `/prefer suffix` text added to the user's prompts; empty clears it."""
        if not isinstance(suffix, str):
            raise InvalidInputError("the suffix must be text")
        suffix = suffix.strip()
        if len(suffix) > MAX_SUFFIX_CHARS:
            raise InvalidInputError(f"the suffix is at most {MAX_SUFFIX_CHARS} characters, got {len(suffix)}")

        async def work(session: AsyncSession) -> UserPrefs:
            prefs = await SettingsRepository(session).user(user_id)
            if prefs is None:
                prefs = UserPrefs(user_id=user_id, suffix=suffix)
                session.add(prefs)
            prefs.suffix = suffix
            await session.flush()
            return prefs

        return await self._write(work)
