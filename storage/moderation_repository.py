"""The moderation queries (bans, banned words, reports, the audit log) over one `AsyncSession`.

Split from storage/repositories.py by subject; the same rules hold: a repository reads and stages
changes, and the caller (`Store`'s moderation methods, storage/store_moderation.py) owns the
transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, Unpack

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Ban, BannedWord, Report, utcnow
from storage.queries import equal_where_given


class AuditTargets(TypedDict, total=False):
    """The audit log's optional filters: entries about this member, or about this job."""

    target_user_id: int | None
    target_job_id: str | None


def _scope(column: Any, guild_id: int | None, *, with_global: bool) -> Any:
    """Rows of this guild (and the global ones, guild None, when `with_global`); None: global only."""
    if guild_id is None:
        return column.is_(None)
    return or_(column == guild_id, column.is_(None)) if with_global else column == guild_id


class ModerationRepository:
    """Bans, banned words, reports and the audit log."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    # -- bans --------------------------------------------------------------------------------

    @staticmethod
    def _in_force(now: datetime) -> Any:
        return and_(Ban.lifted_at.is_(None), or_(Ban.expires_at.is_(None), Ban.expires_at > now))

    async def active_ban(self, user_id: int, guild_id: int | None, now: datetime | None = None) -> Ban | None:
        """The ban in force for the user here: one for this guild, or one for everywhere."""
        stmt = (
            select(Ban)
            .where(Ban.user_id == user_id, _scope(Ban.guild_id, guild_id, with_global=True))
            .where(self._in_force(now or utcnow()))
            .order_by(Ban.created_at.desc(), Ban.id.desc())
            .limit(1)
        )
        return await self.session.scalar(stmt)

    async def exact_bans(self, user_id: int, guild_id: int | None, now: datetime | None = None) -> list[Ban]:
        """Bans in force with exactly this scope (a guild's own, or the global ones when guild_id is None)."""
        scope = _scope(Ban.guild_id, guild_id, with_global=False)
        stmt = select(Ban).where(Ban.user_id == user_id, scope, self._in_force(now or utcnow()))
        return list((await self.session.scalars(stmt)).all())

    async def bans(
        self, guild_id: int | None, *, include_inactive: bool = False, now: datetime | None = None
    ) -> list[Ban]:
        stmt = select(Ban).where(_scope(Ban.guild_id, guild_id, with_global=True))
        if not include_inactive:
            stmt = stmt.where(self._in_force(now or utcnow()))
        return list((await self.session.scalars(stmt.order_by(Ban.created_at.desc(), Ban.id.desc()))).all())

    # -- banned words ------------------------------------------------------------------------

    async def banned_words(self, guild_id: int | None) -> list[BannedWord]:
        """The guild's rules and the global ones (guild_id None), oldest first."""
        scope = _scope(BannedWord.guild_id, guild_id, with_global=True)
        stmt = select(BannedWord).where(scope).order_by(BannedWord.created_at, BannedWord.id)
        return list((await self.session.scalars(stmt)).all())

    async def find_words(
        self, guild_id: int | None, pattern: str, is_regex: bool | None = None
    ) -> list[BannedWord]:
        scope = _scope(BannedWord.guild_id, guild_id, with_global=False)
        stmt = select(BannedWord).where(scope, BannedWord.pattern == pattern)
        if is_regex is not None:
            stmt = stmt.where(BannedWord.is_regex.is_(is_regex))
        return list((await self.session.scalars(stmt)).all())

    # -- reports -----------------------------------------------------------------------------

    async def open_report_by(self, job_id: str, reporter_id: int) -> Report | None:
        stmt = select(Report).where(
            Report.job_id == job_id, Report.reporter_id == reporter_id, Report.state == "open"
        )
        return await self.session.scalar(stmt.limit(1))

    async def reports(
        self, guild_id: int | None, state: str | None = "open", limit: int = 100
    ) -> list[Report]:
        stmt = select(Report).where(*equal_where_given((Report.guild_id, guild_id), (Report.state, state)))
        stmt = stmt.order_by(Report.created_at, Report.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def get_report(self, report_id: int) -> Report | None:
        return await self.session.get(Report, report_id)

    # -- audit -------------------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        self.session.add(entry)
        return entry

    async def audit_log(
        self, guild_id: int | None, limit: int = 50, **targets: Unpack[AuditTargets]
    ) -> list[AuditEntry]:
        stmt = select(AuditEntry).where(
            *equal_where_given(
                (AuditEntry.guild_id, guild_id),
                (AuditEntry.target_user_id, targets.get("target_user_id")),
                (AuditEntry.target_job_id, targets.get("target_job_id")),
            )
        )
        stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())


__all__ = ["AuditTargets", "ModerationRepository"]
