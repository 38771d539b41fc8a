"""Alembic environment for the job history, async and programmatic.

`storage.db` calls Alembic with a live connection in `config.attributes["connection"]` (so the
migrations run inside the store's own transaction and lock); the `alembic` command line gets
none, and then an async engine is made from `sqlalchemy.url`, or `IMAGINE_DATABASE_URL`, or the
default SQLite file. `render_as_batch=True` lets SQLite alter tables (it rebuilds them).
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from storage.db import default_url, normalize_url
from storage.models import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("IMAGINE_DATABASE_URL")
    return normalize_url(url or default_url(os.environ.get("IMAGINE_DATA_DIR", "./data")))


def _configure(**kwargs: object) -> None:
    context.configure(target_metadata=target_metadata, render_as_batch=True, compare_type=True, **kwargs)


def run_migrations_offline() -> None:
    _configure(url=_url(), literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()


def _run_on(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url(), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_run_on)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
    else:
        asyncio.run(_run_async())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
