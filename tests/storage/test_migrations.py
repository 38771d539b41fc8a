"""The schema comes from the Alembic migrations only, and they match the models."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, Table, inspect, text

from storage import db
from storage.models import Base
from storage.store import Store
from tests.storage.conftest import fresh_pg

TABLES = {
    "jobs",
    "images",
    "job_messages",
    "member_settings",
    "fast_usage",
    "prompt_options",
    "bans",
    "banned_words",
    "reports",
    "audit_log",
    "guild_settings",
    "user_prefs",
    "web_tokens",
    "processes",
    "alembic_version",
}


def _diff(connection) -> list:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "compare_server_default": False}
    )
    return compare_metadata(context, Base.metadata)


async def _check_models_match(url: str) -> None:
    database = db.Database(url)
    try:
        assert await database.upgrade() == db.head_revision()
        async with database.engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        assert tables == TABLES
    finally:
        await database.close()


async def test_migrations_from_empty_build_exactly_the_models_schema_on_sqlite(tmp_path: Path) -> None:
    await _check_models_match(db.default_url(tmp_path))


async def test_migrations_build_exactly_the_models_schema_on_postgresql(pg_cluster) -> None:
    await _check_models_match(await fresh_pg(pg_cluster))


async def test_concurrent_first_starts_on_postgresql_take_turns(pg_cluster) -> None:

    import asyncpg  # optional: only with a PostgreSQL server

    url = await fresh_pg(pg_cluster)
    conn = await asyncpg.connect(host="127.0.0.1", port=pg_cluster.port, user="postgres", database="postgres")
    await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")  # really empty
    await conn.close()
    databases = [db.Database(url) for _ in range(3)]
    try:
        revisions = await asyncio.gather(*(database.upgrade() for database in databases))
        assert revisions == [db.head_revision()] * 3
    finally:
        for database in databases:
            await database.close()


async def test_the_check_notices_a_model_without_a_migration(tmp_path: Path) -> None:
    """The agreement test above is only worth something if a difference shows up."""

    database = db.Database(db.default_url(tmp_path))
    try:
        await database.upgrade()
        extra = MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(extra)
        Table("jobs_extra", extra, Column("id", Integer, primary_key=True))
        async with database.engine.connect() as conn:
            diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), extra))
        assert [entry[0] for entry in diff] == ["add_table"]
    finally:
        await database.close()


def test_imagine_db_upgrade_runs_by_hand_is_repeatable_and_reversible(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'by-hand.db'}"  # a driverless URL is accepted too
    assert db.upgrade(url) == db.head_revision()
    assert db.upgrade(url) == db.head_revision()  # already at head: nothing to do
    config = db.alembic_config(url)
    command.downgrade(config, "base")

    with sqlite3.connect(tmp_path / "by-hand.db") as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert names == {"alembic_version"}
    assert db.upgrade(url) == db.head_revision()


async def test_upgrade_called_from_inside_an_event_loop_still_works(tmp_path: Path) -> None:
    assert db.upgrade(db.default_url(tmp_path)) == db.head_revision()


def test_migrations_run_from_the_installed_package_whatever_the_working_directory(tmp_path: Path) -> None:
    script = "import sys; from storage.db import upgrade; print(upgrade(sys.argv[1]))"
    url = f"sqlite+aiosqlite:///{tmp_path / 'elsewhere.db'}"
    result = subprocess.run(
        [sys.executable, "-c", script, url], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == db.head_revision()


def test_two_processes_starting_at_once_both_get_a_migrated_database(tmp_path: Path) -> None:
    script = (
        "import asyncio, sys\n"
        "from storage.store import Store\n"
        "async def main():\n"
        "    store = await Store.open(None, sys.argv[1])\n"
        "    await store.create_job(user_id=1, kind='imagine')\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    errors = [proc.communicate(timeout=120)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], errors

    with sqlite3.connect(tmp_path / db.DATABASE_FILE) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (2,)
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(db.head_revision(),)]


async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_store: Store) -> None:
    async def pragmas(session):
        return [
            (await session.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        ]

    assert await sqlite_store.db.transaction(pragmas, write=False) == ["wal", 1, 5000]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///x.db", "sqlite+aiosqlite:///x.db"),
        ("postgresql://u:p%40ss@h/db", "postgresql+asyncpg://u:p%40ss@h/db"),
        ("postgres://u@h/db", "postgresql+asyncpg://u@h/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_driverless_urls_get_their_async_driver(url: str, expected: str) -> None:
    assert db.normalize_url(url) == expected


def test_a_malformed_database_url_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match="IMAGINE_DATABASE_URL is not a database URL"):
        db.normalize_url("not a url")


async def test_upgrading_a_0001_database_keeps_jobs_and_their_messages(tmp_path: Path) -> None:
    """0002 adds each message's channel and 0003 drops `jobs.message_ids`; a database written at
    0001 keeps its job and links, and its messages are found in the job's channel."""

    path = tmp_path / "old.db"
    old = db.Database(f"sqlite+aiosqlite:///{path}")
    try:
        assert await old.upgrade("0001") == "0001"
    finally:
        await old.close()
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO jobs (id, kind, status, source, user_id, user_name, guild_id, channel_id, "
            "message_id, message_ids, raw_prompt, prompt, params, model, created_at, attempts, timings, "
            "hidden, deleted) VALUES ('old-job', 'imagine', 'done', 'discord', 1, 'u', 10, 100, 702, "
            "'[701, 702]', 'p', 'p', '{}', 'm', '2026-01-01 00:00:00.000000', 0, '{}', 0, 0)"
        )
        conn.executemany(
            "INSERT INTO job_messages (message_id, job_id, created_at) VALUES (?, 'old-job', ?)",
            [(701, "2026-01-01 00:00:01.000000"), (702, "2026-01-01 00:00:02.000000")],
        )

    store = await Store.open(f"sqlite+aiosqlite:///{path}", tmp_path / "data")
    try:
        job = await store.get_job("old-job")
        assert job is not None and job.message_id == 702
        assert await store.job_messages("old-job") == [(100, 701), (100, 702)]
    finally:
        await store.close()
