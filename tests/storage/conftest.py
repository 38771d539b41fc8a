"""Fixtures for the store's tests: a real store on a real SQLite file, and, when the machine has a
PostgreSQL server, the same tests again on a throwaway PostgreSQL cluster."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from storage.store import Store
from tests.storage import pg


@dataclass(frozen=True)
class Raster:
    """Raw RGB pixels shaped like `engine.api.ImageData` (the store accepts any such object)."""

    width: int
    height: int
    rgb: bytes


def raster(width: int = 8, height: int = 8, value: int = 0) -> Raster:
    """A picture of one colour; different `value`s give different files and hashes."""
    pixel = bytes([value % 256, (value * 7) % 256, (value * 13) % 256])
    return Raster(width, height, pixel * (width * height))


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[pg.Cluster]:
    reason = pg.why_unavailable()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    try:
        cluster = pg.start()
    except (OSError, RuntimeError, subprocess.CalledProcessError) as exc:
        # Installed but unable to run here (no shared memory in a container, say): an environment
        # matter, not a defect of the store, so the PostgreSQL runs are skipped with the reason.
        detail = getattr(exc, "stderr", b"") or b""
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        pytest.skip(f"PostgreSQL is installed but did not start: {exc} {detail.strip()[-300:]}")
    try:
        yield cluster
    finally:
        cluster.stop()


_pg_migrated: set[int] = set()


async def fresh_pg(cluster: pg.Cluster) -> str:
    """An empty, migrated database for one test.

    The schema is built by the migrations once per cluster; later tests empty the tables, which
    is far faster than dropping and migrating again.
    """
    import asyncpg  # optional: only with a PostgreSQL server

    conn = await asyncpg.connect(host="127.0.0.1", port=cluster.port, user="postgres", database="postgres")
    try:
        if cluster.port not in _pg_migrated:
            await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
            _pg_migrated.add(cluster.port)
        else:
            query = (
                "SELECT tablename FROM pg_tables"
                " WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
            tables = [name for (name,) in await conn.fetch(query)]
            if tables:
                await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    return cluster.url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A migrated store on SQLite (a file under tmp_path) or on PostgreSQL."""
    url = None
    if request.param == "postgresql":
        url = await fresh_pg(request.getfixturevalue("pg_cluster"))
    opened = await Store.open(url, tmp_path / "data")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(None, tmp_path / "data")
    try:
        yield opened
    finally:
        await opened.close()
