"""The queries the bot needs, as repositories over one `AsyncSession`.

Repositories read and stage changes; they never commit. The caller (`Store`, one unit of work per
method) owns the transaction, so several repository calls either all happen or none do. The SQL is
portable: recursive CTEs, LIKE with an explicit escape character, and keyset pagination written
as plain comparisons work the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Select,
    and_,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, noload
from sqlalchemy.orm.attributes import InstrumentedAttribute, set_committed_value

from storage.files import StoredFile
from storage.models import (
    GRID_INDEX,
    AuditEntry,
    Ban,
    BannedWord,
    GuildSettings,
    Image,
    Job,
    JobMessage,
    JobStatus,
    Report,
    ReportState,
    UserPrefs,
    utcnow,
)
from storage.queries import HistoryPage, HistoryQuery, decode_cursor, encode_cursor, like_pattern

MAX_LINEAGE_DEPTH = 1000  # a guard against a parent cycle written by hand, far beyond any real chain
PENDING = (JobStatus.QUEUED.value, JobStatus.RUNNING.value)


def _lineage_walk(job_id: str, name: str, *, up: bool) -> CTE:
    """A recursive CTE of (id, parent_id, depth) from the job: up through its parents or down
    through what was derived from it, at most `MAX_LINEAGE_DEPTH` generations."""
    start = (
        select(Job.id, Job.parent_id, literal_column("0").label("depth"))
        .where(Job.id == job_id)
        .cte(name, recursive=True)
    )
    step = aliased(Job)
    link = step.id == start.c.parent_id if up else step.parent_id == start.c.id
    return start.union_all(
        select(step.id, step.parent_id, start.c.depth + 1)
        .join(start, link)
        .where(start.c.depth < MAX_LINEAGE_DEPTH)
    )


def _newest_first(stmt: Select[Any]) -> Select[Any]:
    return stmt.order_by(Job.created_at.desc(), Job.id.desc())


class JobRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, job: Job) -> Job:
        self.session.add(job)
        await self.session.flush()
        return job

    async def get(self, job_id: str) -> Job | None:
        return await self.session.get(Job, job_id)

    async def status(self, job_id: str) -> str | None:
        """Just the job's status (None: no such job); the cheap check before work on a job."""
        return await self.session.scalar(select(Job.status).where(Job.id == job_id))

    async def get_without_images(self, job_id: str, *, lock: bool = False) -> Job | None:
        """The job row alone, its `images` left empty: for a unit of work that sets them itself.

        `lock` takes the row for this transaction (SELECT ... FOR UPDATE where the database has
        it; SQLite's write transactions are serial anyway), so two writers that both read the
        status first cannot both act on it.
        """
        stmt = select(Job).where(Job.id == job_id).options(noload(Job.images))
        if lock:
            stmt = stmt.with_for_update()
        return await self.session.scalar(stmt)

    async def exists(self, job_id: str) -> bool:
        return (await self.session.scalar(select(Job.id).where(Job.id == job_id))) is not None

    async def pending(self) -> list[Job]:
        """Queued and running jobs, oldest first: the order to resume them in after a restart."""
        stmt = select(Job).where(Job.status.in_(PENDING)).order_by(Job.created_at, Job.id)
        return list((await self.session.scalars(stmt)).all())

    async def for_user(
        self, user_id: int, statuses: Sequence[str] | None = None, limit: int = 50
    ) -> list[Job]:
        stmt = select(Job).where(Job.user_id == user_id)
        if statuses:
            stmt = stmt.where(Job.status.in_(list(statuses)))
        return list((await self.session.scalars(_newest_first(stmt).limit(limit))).all())

    async def count_for_user(self, user_id: int, statuses: Sequence[str]) -> int:
        stmt = (
            select(func.count())
            .select_from(Job)
            .where(Job.user_id == user_id, Job.status.in_(list(statuses)))
        )
        return int(await self.session.scalar(stmt) or 0)

    async def history(self, query: HistoryQuery) -> HistoryPage:
        limit = query.checked_limit()
        statuses = query.statuses()
        kinds = query.kinds()
        stmt = select(Job).where(
            *_equal_where_given((Job.user_id, query.user_id), (Job.guild_id, query.guild_id))
        )
        if statuses:
            stmt = stmt.where(Job.status.in_(statuses))
        if query.since is not None:
            stmt = stmt.where(Job.created_at >= query.since)
        if query.until is not None:
            stmt = stmt.where(Job.created_at < query.until)
        if kinds:
            stmt = stmt.where(Job.kind.in_(kinds))
        if not query.include_hidden or query.hidden is False:
            stmt = stmt.where(Job.hidden.is_(False))
        elif query.hidden:
            stmt = stmt.where(Job.hidden.is_(True))
        if query.reported:
            open_report = select(Report.id).where(
                Report.job_id == Job.id, Report.state == ReportState.OPEN.value
            )
            stmt = stmt.where(open_report.exists())
        if query.text and query.text.strip():
            pattern = like_pattern(query.text.strip())
            if self.session.get_bind().dialect.name == "sqlite":
                # SQLite's LIKE already ignores ASCII case, exactly what ILIKE's lower() does there
                # (both are ASCII-only without ICU); skipping lower() on every row is ~25% faster.
                stmt = stmt.where(
                    or_(Job.prompt.like(pattern, escape="\\"), Job.raw_prompt.like(pattern, escape="\\"))
                )
            else:
                stmt = stmt.where(
                    or_(Job.prompt.ilike(pattern, escape="\\"), Job.raw_prompt.ilike(pattern, escape="\\"))
                )
        if query.before:
            created_at, job_id = decode_cursor(query.before)
            # The redundant `created_at <=` is the range an index on (..., created_at) can seek to;
            # the OR alone makes SQLite walk every newer row of the page's user or guild first.
            stmt = stmt.where(
                Job.created_at <= created_at,
                or_(Job.created_at < created_at, and_(Job.created_at == created_at, Job.id < job_id)),
            )
        # One row more than asked tells whether a next page exists without a COUNT.
        rows = list((await self.session.scalars(_newest_first(stmt).limit(limit + 1))).all())
        jobs = rows[:limit]
        cursor = encode_cursor(jobs[-1].created_at, jobs[-1].id) if len(rows) > limit else None
        return HistoryPage(jobs=jobs, next_cursor=cursor)

    async def ancestors(self, job_id: str) -> list[Job]:
        """The parent, its parent and so on, root first."""
        chain = _lineage_walk(job_id, "chain", up=True)
        return await self._walked(chain, chain.c.depth.desc())

    async def descendants(self, job_id: str) -> list[Job]:
        """Everything derived from the job, generation by generation, oldest first within one."""
        tree = _lineage_walk(job_id, "tree", up=False)
        return await self._walked(tree, tree.c.depth, Job.created_at, Job.id)

    async def _walked(self, walk: CTE, *order: ColumnElement[Any] | InstrumentedAttribute[Any]) -> list[Job]:
        """The jobs a lineage walk reached (the start job left out), in `order`."""
        stmt = select(Job).join(walk, Job.id == walk.c.id).where(walk.c.depth > 0).order_by(*order)
        return list((await self.session.scalars(stmt)).unique().all())

    async def add_message(self, job: Job, message_id: int, channel_id: int | None = None) -> None:
        job.message_id = message_id
        channel_id = job.channel_id if channel_id is None else channel_id
        link = await self.session.get(JobMessage, message_id)
        if link is None:
            self.session.add(JobMessage(message_id=message_id, job_id=job.id, channel_id=channel_id))
        else:
            link.job_id = job.id
            link.channel_id = channel_id

    async def messages(self, job_id: str) -> list[tuple[int | None, int]]:
        """(channel id, message id) of every message showing the job, oldest first.

        One statement: the link rows (NULL channel, from before revision 0002, means the job's
        channel) plus the job row's own `message_id` when no link row has it (written by hand or
        before the link table), so each message comes once.
        """
        linked = (
            select(
                JobMessage.created_at.label("at"),
                func.coalesce(JobMessage.channel_id, Job.channel_id).label("channel_id"),
                JobMessage.message_id.label("message_id"),
            )
            .join(Job, Job.id == JobMessage.job_id)
            .where(JobMessage.job_id == job_id)
        )
        unlinked = select(
            Job.created_at.label("at"), Job.channel_id.label("channel_id"), Job.message_id.label("message_id")
        ).where(
            Job.id == job_id,
            Job.message_id.is_not(None),
            ~select(JobMessage.message_id).where(JobMessage.message_id == Job.message_id).exists(),
        )
        both = union_all(linked, unlinked).subquery()
        stmt = select(both.c.channel_id, both.c.message_id).order_by(both.c.at, both.c.message_id)
        rows = (await self.session.execute(stmt)).all()
        return [(channel_id, message_id) for channel_id, message_id in rows]

    async def by_message(self, message_id: int) -> Job | None:
        stmt = (
            select(Job)
            .join(JobMessage, JobMessage.job_id == Job.id)
            .where(JobMessage.message_id == message_id)
        )
        job = await self.session.scalar(stmt)
        if job is None:  # a message recorded only on the job row (written by hand or before the link table)
            job = await self.session.scalar(select(Job).where(Job.message_id == message_id).limit(1))
        return job


class ImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def replace_for_job(
        self, job: Job, cells: Sequence[tuple[StoredFile, int | None]], grid: StoredFile | None
    ) -> list[Image]:
        """Make the job's image rows exactly these files (cells in order, then the grid)."""
        await self.session.execute(delete(Image).where(Image.job_id == job.id))
        entries = [(index, stored, seed) for index, (stored, seed) in enumerate(cells)]
        if grid is not None:
            entries.append((GRID_INDEX, grid, None))
        values = [
            {
                "job_id": job.id,
                "index": index,
                "path": stored.path,
                "width": stored.width,
                "height": stored.height,
                "seed": seed,
                "sha256": stored.sha256,
                "bytes": stored.bytes,
            }
            for index, stored, seed in entries
        ]
        # One multi-row INSERT that hands back the rows with their ids (a plain flush would send
        # one INSERT per row, each a round trip to the database thread).
        stmt = insert(Image).returning(Image)
        rows = sorted((await self.session.scalars(stmt, values)).all(), key=lambda row: row.index)
        # The new rows are the whole collection: set it as loaded rather than reading it back.
        set_committed_value(job, "images", rows)  # in `order_by` order
        for row in rows:
            set_committed_value(row, "job", job)
        return rows

    async def referenced_paths(self) -> set[str]:
        return set((await self.session.scalars(select(Image.path))).all())


def _equal_where_given(*filters: tuple[Any, object]) -> list[Any]:
    """`column == value` for each (column, value) whose value was given: None means no filter."""
    return [column == value for column, value in filters if value is not None]


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
        stmt = select(Report).where(*_equal_where_given((Report.guild_id, guild_id), (Report.state, state)))
        stmt = stmt.order_by(Report.created_at, Report.id).limit(limit)
        return list((await self.session.scalars(stmt)).all())

    async def get_report(self, report_id: int) -> Report | None:
        return await self.session.get(Report, report_id)

    # -- audit -------------------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry) -> AuditEntry:
        self.session.add(entry)
        return entry

    async def audit_log(
        self,
        guild_id: int | None,
        limit: int = 50,
        *,
        target_user_id: int | None = None,
        target_job_id: str | None = None,
    ) -> list[AuditEntry]:
        stmt = select(AuditEntry).where(
            *_equal_where_given(
                (AuditEntry.guild_id, guild_id),
                (AuditEntry.target_user_id, target_user_id),
                (AuditEntry.target_job_id, target_job_id),
            )
        )
        stmt = stmt.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
        return list((await self.session.scalars(stmt)).all())


class SettingsRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def guild(self, guild_id: int) -> GuildSettings | None:
        return await self.session.get(GuildSettings, guild_id)

    async def user(self, user_id: int) -> UserPrefs | None:
        return await self.session.get(UserPrefs, user_id)


__all__ = ["ImageRepository", "JobRepository", "ModerationRepository", "SettingsRepository"]
