"""The moderation half of `Store`: bans, banned words, reports, the audit log, hiding jobs.

A mixin of `Store` (storage/store.py), split off by subject so each file reads on its own; it
uses the store's units of work (`UnitsOfWork`: `_write`, `_read`, `_job`). Moderator actions write their audit
entry in the same transaction as the change, so the audit log cannot miss one.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from storage.errors import InvalidInputError, NotFoundError
from storage.models import (
    AuditEntry,
    Ban,
    BannedWord,
    Job,
    Report,
    ReportState,
    utcnow,
)
from storage.records import JSONObject
from storage.repositories import (
    ModerationRepository,
)
from storage.units import UnitsOfWork
from storage.validation import is_int

log = logging.getLogger(__name__)

MAX_PATTERN_CHARS = 500


class ModerationMethods(UnitsOfWork):
    """Store methods for moderation; see `Store` for the unit-of-work rules they follow."""

    async def active_ban(self, user_id: int, guild_id: int | None, now: datetime | None = None) -> Ban | None:
        """The ban in force for the user in this guild (or everywhere), expiry honoured."""
        return await self._read(
            lambda session: ModerationRepository(session).active_ban(user_id, guild_id, now)
        )

    async def ban(
        self,
        user_id: int,
        guild_id: int | None,
        reason: str,
        moderator_id: int | None,
        expires_at: datetime | None = None,
        *,
        audit: bool = True,
    ) -> Ban:
        """Ban a user here (guild_id None: everywhere). Banning again replaces reason and expiry."""
        if not is_int(user_id):
            raise InvalidInputError(f"user id must be a whole number, got {user_id!r}")
        now = utcnow()
        if expires_at is not None:
            expires_at = expires_at if expires_at.tzinfo else expires_at.replace(tzinfo=UTC)
            if expires_at <= now:
                raise InvalidInputError("a ban's expiry must be in the future")

        async def work(session: AsyncSession) -> Ban:
            moderation = ModerationRepository(session)
            existing = await moderation.exact_bans(user_id, guild_id, now)
            if existing:
                ban = existing[0]
                ban.reason, ban.moderator_id, ban.expires_at = reason, moderator_id, expires_at
            else:
                ban = Ban(
                    user_id=user_id,
                    guild_id=guild_id,
                    reason=reason,
                    moderator_id=moderator_id,
                    expires_at=expires_at,
                    created_at=now,
                )
                session.add(ban)
            if audit and moderator_id is not None:
                details = {"expires_at": expires_at.isoformat() if expires_at else None}
                moderation.add_audit(
                    AuditEntry(
                        guild_id=guild_id,
                        moderator_id=moderator_id,
                        action="ban",
                        target_user_id=user_id,
                        reason=reason,
                        details=details,
                    )
                )
            await session.flush()
            return ban

        return await self._write(work)

    async def unban(
        self, user_id: int, guild_id: int | None, moderator_id: int | None, *, audit: bool = True
    ) -> bool:
        """Lift the user's bans of exactly this scope; False when there was none."""

        async def work(session: AsyncSession) -> bool:
            moderation = ModerationRepository(session)
            bans = await moderation.exact_bans(user_id, guild_id)
            now = utcnow()
            for ban in bans:
                ban.lifted_at, ban.lifted_by = now, moderator_id
            if bans and audit and moderator_id is not None:
                moderation.add_audit(
                    AuditEntry(
                        guild_id=guild_id, moderator_id=moderator_id, action="unban", target_user_id=user_id
                    )
                )
            return bool(bans)

        return await self._write(work)

    async def bans(
        self, guild_id: int | None, *, include_inactive: bool = False, now: datetime | None = None
    ) -> list[Ban]:
        """Bans that apply in the guild (its own and global ones), newest first; in force at `now`
        (default: the present) unless `include_inactive`."""
        return await self._read(
            lambda session: ModerationRepository(session).bans(
                guild_id, include_inactive=include_inactive, now=now
            )
        )

    async def banned_words(self, guild_id: int | None) -> list[BannedWord]:
        """The guild's banned words and the global ones."""
        return await self._read(lambda session: ModerationRepository(session).banned_words(guild_id))

    async def add_banned_word(
        self,
        guild_id: int | None,
        pattern: str,
        is_regex: bool = False,
        created_by: int | None = None,
        *,
        audit: bool = True,
    ) -> BannedWord:
        """Add a rule (plain word or regex); adding one that exists returns the existing rule."""
        pattern = (pattern or "").strip()
        if not pattern:
            raise InvalidInputError("a banned word cannot be empty")
        if len(pattern) > MAX_PATTERN_CHARS:
            raise InvalidInputError(
                f"a banned word is at most {MAX_PATTERN_CHARS} characters, got {len(pattern)}"
            )
        if is_regex:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InvalidInputError(f"banned regex {pattern!r} does not compile: {exc}") from exc

        async def work(session: AsyncSession) -> BannedWord:
            moderation = ModerationRepository(session)
            existing = await moderation.find_words(guild_id, pattern, bool(is_regex))
            if existing:
                return existing[0]
            word = BannedWord(
                guild_id=guild_id, pattern=pattern, is_regex=bool(is_regex), created_by=created_by
            )
            session.add(word)
            if audit and created_by is not None:
                moderation.add_audit(
                    AuditEntry(
                        guild_id=guild_id,
                        moderator_id=created_by,
                        action="word_add",
                        details={"pattern": pattern, "is_regex": bool(is_regex)},
                    )
                )
            await session.flush()
            return word

        return await self._write(work)

    async def remove_banned_word(
        self, guild_id: int | None, pattern: str, moderator_id: int | None = None, *, audit: bool = True
    ) -> bool:
        """Remove the rule with this exact text (word or regex); False when there was none."""
        pattern = (pattern or "").strip()

        async def work(session: AsyncSession) -> bool:
            moderation = ModerationRepository(session)
            words = await moderation.find_words(guild_id, pattern)
            for word in words:
                await session.delete(word)
            if words and audit and moderator_id is not None:
                moderation.add_audit(
                    AuditEntry(
                        guild_id=guild_id,
                        moderator_id=moderator_id,
                        action="word_remove",
                        details={"pattern": pattern},
                    )
                )
            return bool(words)

        return await self._write(work)

    async def add_report(
        self, job_id: str, guild_id: int | None, reporter_id: int, reason: str = ""
    ) -> Report:
        """A member reports a job; a second report by the same member while open returns the first."""

        async def work(session: AsyncSession) -> Report:
            await self._job(session, job_id)
            moderation = ModerationRepository(session)
            existing = await moderation.open_report_by(job_id, reporter_id)
            if existing is not None:
                return existing
            report = Report(job_id=job_id, guild_id=guild_id, reporter_id=reporter_id, reason=reason or "")
            session.add(report)
            await session.flush()
            return report

        return await self._write(work)

    async def reports(self, guild_id: int | None, state: str | None = ReportState.OPEN.value) -> list[Report]:
        """Reports in a guild (all guilds when None), oldest first; state None means every state."""
        if state is not None and state not in {value.value for value in ReportState}:
            raise InvalidInputError(
                f"unknown report state {state!r}; expected one of {[s.value for s in ReportState]}"
            )
        return await self._read(lambda session: ModerationRepository(session).reports(guild_id, state))

    async def resolve_report(
        self,
        report_id: int,
        moderator_id: int,
        state: str = ReportState.RESOLVED.value,
        *,
        audit: bool = True,
    ) -> Report:
        closing = {ReportState.RESOLVED.value, ReportState.ACTIONED.value}
        if state not in closing:
            raise InvalidInputError(f"a report is resolved as one of {sorted(closing)}, got {state!r}")

        async def work(session: AsyncSession) -> Report:
            moderation = ModerationRepository(session)
            report = await moderation.get_report(report_id)
            if report is None:
                raise NotFoundError(f"no report with id {report_id}")
            report.state, report.resolved_by, report.resolved_at = state, moderator_id, utcnow()
            if audit:
                moderation.add_audit(
                    AuditEntry(
                        guild_id=report.guild_id,
                        moderator_id=moderator_id,
                        action=f"report_{state}",
                        target_job_id=report.job_id,
                        details={"report_id": report.id},
                    )
                )
            return report

        return await self._write(work)

    async def audit(
        self,
        guild_id: int | None,
        moderator_id: int,
        action: str,
        *,
        target_job_id: str | None = None,
        target_user_id: int | None = None,
        reason: str = "",
        details: JSONObject | None = None,
    ) -> AuditEntry:
        """Record a moderator action the store did not record itself."""
        if not action or len(action) > 40:
            raise InvalidInputError(f"an audit action is 1-40 characters, got {action!r}")

        async def work(session: AsyncSession) -> AuditEntry:
            entry = ModerationRepository(session).add_audit(
                AuditEntry(
                    guild_id=guild_id,
                    moderator_id=moderator_id,
                    action=action,
                    target_job_id=target_job_id,
                    target_user_id=target_user_id,
                    reason=reason or "",
                    details=details or {},
                )
            )
            await session.flush()
            return entry

        return await self._write(work)

    async def audit_log(
        self,
        guild_id: int | None,
        limit: int = 50,
        *,
        target_user_id: int | None = None,
        target_job_id: str | None = None,
    ) -> list[AuditEntry]:
        """Moderator actions, newest first (every guild when guild_id is None)."""
        return await self._read(
            lambda session: ModerationRepository(session).audit_log(
                guild_id, limit, target_user_id=target_user_id, target_job_id=target_job_id
            )
        )

    async def set_hidden(
        self, job_id: str, hidden: bool, moderator_id: int, reason: str = "", *, audit: bool = True
    ) -> Job:
        """Hide a job from members (or show it again); who and why are kept on the job and in the log."""

        async def work(session: AsyncSession) -> Job:
            job = await self._job(session, job_id)
            job.hidden = bool(hidden)
            job.hidden_by = moderator_id if hidden else None
            job.hidden_reason = (reason or "") if hidden else None
            if audit:
                ModerationRepository(session).add_audit(
                    AuditEntry(
                        guild_id=job.guild_id,
                        moderator_id=moderator_id,
                        action="hide" if hidden else "unhide",
                        target_job_id=job.id,
                        target_user_id=job.user_id,
                        reason=reason or "",
                    )
                )
            return job

        return await self._write(work)
