"""The database connection: engine, sessions, SQLite settings, retries and migrations.

SQLite is the default and must let the bot and a second process (the console, a moderator page)
use one file at once, so every SQLite connection gets WAL (readers never wait for the writer),
foreign keys and a busy timeout. Writes start with `BEGIN IMMEDIATE`: a deferred transaction that
reads first and writes later cannot wait for the lock (SQLite answers "database is locked" at
once to avoid a deadlock), while an immediate one queues on the busy timeout like any other lock.
What still comes back busy is retried with backoff, so a user never sees "database is locked".

Any other SQLAlchemy async URL (PostgreSQL through asyncpg) works unchanged: nothing here is
SQLite-only except behind `is_sqlite`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.errors import DatabaseBusyError, InvalidInputError

log = logging.getLogger(__name__)

T = TypeVar("T")

DATABASE_FILE = "imagine.db"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

_WRITE_OPTION = "imagine_write"  # execution option that marks the writer engine
_PG_RETRYABLE = {"40001", "40P01"}  # serialization failure, deadlock detected
_MIGRATION_LOCK_KEY = 0x1A6E_0001  # any constant; names the "migrating" advisory lock on PostgreSQL


def default_url(data_dir: str | Path) -> str:
    """The SQLite file in the data directory: what `IMAGINE_DATABASE_URL` defaults to."""
    return f"sqlite+aiosqlite:///{Path(data_dir).expanduser().resolve() / DATABASE_FILE}"


def normalize_url(url: str) -> str:
    """Give a driverless URL its async driver (`sqlite://` -> aiosqlite, `postgresql://` -> asyncpg).

    Operators copy URLs from elsewhere; accepting the plain forms saves them a confusing error.
    """
    try:
        parsed = make_url(url)
    except Exception as exc:  # ArgumentError, ValueError: both mean the text is not a URL
        raise InvalidInputError(f"IMAGINE_DATABASE_URL is not a database URL: {url!r} ({exc})") from exc
    drivers = {
        "sqlite": "sqlite+aiosqlite",
        "postgresql": "postgresql+asyncpg",
        "postgres": "postgresql+asyncpg",
    }
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def is_busy_error(exc: BaseException) -> bool:
    """True for the transient "someone else holds the lock" errors that are safe to retry."""
    if not isinstance(exc, DBAPIError):
        return False
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _PG_RETRYABLE:
        return True
    if isinstance(exc, OperationalError):
        text = str(orig).lower()
        return "database is locked" in text or "database table is locked" in text or "busy" in text
    return False


def _ensure_sqlite_dir(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)


class Database:
    """An async engine, a reader and a writer session factory, and retrying units of work.

    `transaction(work, write=True)` is the one way in: it opens a session, runs `work(session)`,
    commits, and runs the whole thing again if the database was busy. Objects come back with
    their attributes loaded (`expire_on_commit=False`), usable after the session has closed.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_s: float = 5.0,
        retry_for_s: float = 30.0,
        echo: bool = False,
    ) -> None:
        self.url = normalize_url(url)
        self.sqlite = is_sqlite(self.url)
        self.busy_timeout_s = busy_timeout_s
        self.retry_for_s = retry_for_s
        kwargs: dict[str, Any] = {"echo": echo}
        if self.sqlite:
            _ensure_sqlite_dir(self.url)
            kwargs["connect_args"] = {"timeout": busy_timeout_s}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.sqlite:
            self._install_sqlite_hooks()
        # Same pool; the option only changes how a transaction begins (see `_install_sqlite_hooks`).
        self.write_engine: AsyncEngine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self.reader = async_sessionmaker(self.engine, expire_on_commit=False)
        self.writer = async_sessionmaker(self.write_engine, expire_on_commit=False)
        # SQLite has one writer at a time anyway; queueing this process's writers here is cheaper
        # than letting them poll the file lock. Other processes still wait on the busy timeout.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.sqlite else None

    def _install_sqlite_hooks(self) -> None:
        busy_ms = int(self.busy_timeout_s * 1000)

        @event.listens_for(self.engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transactions out of the driver's hands so `BEGIN IMMEDIATE` is possible.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")  # durable across crashes in WAL mode
                cursor.execute("PRAGMA foreign_keys = ON")
            finally:
                cursor.close()

        @event.listens_for(self.engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get(_WRITE_OPTION):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                conn.exec_driver_sql("BEGIN")

    async def transaction(self, work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = True) -> T:
        """Run `work` in one transaction and commit it; retry the whole of it while the database is busy.

        `work` may run more than once, so it must only touch the session, and it must not open
        another unit of work itself (on SQLite this process's writers take turns on one lock).
        """
        factory = self.writer if write else self.reader
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for_s
        delay = 0.02
        attempt = 0
        while True:
            attempt += 1
            try:
                if write and self._write_lock is not None:
                    async with self._write_lock:
                        return await self._run(factory, work)
                return await self._run(factory, work)
            except DBAPIError as exc:
                if not is_busy_error(exc):
                    raise
                if loop.time() >= deadline:
                    raise DatabaseBusyError(
                        f"the database stayed busy for {self.retry_for_s:.0f} s ({attempt} attempts); "
                        "please try again in a moment"
                    ) from exc
                log.info("database busy (attempt %d), retrying in %.0f ms", attempt, delay * 1000)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)

    @staticmethod
    async def _run(
        factory: async_sessionmaker[AsyncSession], work: Callable[[AsyncSession], Awaitable[T]]
    ) -> T:
        async with factory() as session, session.begin():
            return await work(session)

    async def upgrade(self, revision: str = "head") -> str:
        """Bring the schema to `revision` with Alembic; returns the revision now in place.

        Two processes starting at once take turns, and the second finds the schema already at
        head: on SQLite the writer's `BEGIN IMMEDIATE` orders them; on PostgreSQL a
        transaction-scoped advisory lock does (DDL there would otherwise collide, not wait).
        """

        async def work(session: AsyncSession) -> str:
            conn = await session.connection()
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            return await conn.run_sync(_upgrade_on, self.url, revision)

        rev = await self.transaction(work, write=True)
        log.info("database schema at revision %s", rev)
        return rev

    async def close(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str | None = None) -> Config:
    """An Alembic config pointing at the migrations inside the installed package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        # ConfigParser treats % as interpolation; a password may contain it.
        config.set_main_option("sqlalchemy.url", normalize_url(url).replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the storage package ships without migrations"
    return head


def _upgrade_on(connection: Connection, url: str, revision: str) -> str:
    config = alembic_config(url)
    config.attributes["connection"] = connection  # env.py runs on this connection
    command.upgrade(config, revision)
    return MigrationContext.configure(connection).get_current_revision() or ""


def upgrade(url: str, revision: str = "head") -> str:
    """Run the migrations from synchronous code; returns the revision now in place.

    (`imagine db upgrade` goes through `Store.open`, which runs them the same way.) Called with an
    event loop already running, it does the work on a private thread with its own loop rather
    than failing.
    """

    async def run() -> str:
        database = Database(url)
        try:
            return await database.upgrade(revision)
        finally:
            await database.close()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run())
    result: list[str] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            result.append(asyncio.run(run()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target, name="imagine-db-upgrade")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


__all__ = [
    "DATABASE_FILE",
    "Database",
    "alembic_config",
    "default_url",
    "head_revision",
    "is_busy_error",
    "is_sqlite",
    "normalize_url",
    "upgrade",
]
