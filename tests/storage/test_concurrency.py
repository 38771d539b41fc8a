"""Many writers at once, in this process and in another one: nothing lost, nobody sees "locked"."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

from storage.db import Database, default_url
from storage.errors import DatabaseBusyError
from storage.files import ImageFiles
from storage.queries import HistoryQuery
from storage.store import Store
from tests.storage.conftest import raster

OTHER_PROCESS = """
import asyncio, sys
from storage.store import Store

async def main(data_dir, tasks, per_task):
    store = await Store.open(None, data_dir)
    async def writer(n):
        for i in range(per_task):
            job = await store.create_job(
                user_id=9000 + n, kind="imagine", source="console", prompt=f"other {n}/{i}"
            )
            await store.mark_running(job.id)
            await store.update_job(job.id, queue_position=i)
    await asyncio.gather(*(writer(n) for n in range(tasks)))
    await store.close()

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""


async def test_concurrent_writers_in_two_processes_lose_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await Store.open(None, data_dir)
    other = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OTHER_PROCESS, str(data_dir), "4", "20", stderr=asyncio.subprocess.PIPE
    )
    tasks, per_task = 20, 6
    reads = 0

    async def writer(n: int) -> None:
        for i in range(per_task):
            job = await store.create_job(user_id=n, kind="imagine", prompt=f"mine {n}/{i}")
            await store.mark_running(job.id)
            await store.add_message(job.id, n * 1000 + i)
            if i % 3 == 0:
                await store.complete_job(job.id, [raster(4, 4, i)], seeds=[i])

    async def reader(stop: asyncio.Event) -> None:
        nonlocal reads
        while not stop.is_set():  # a moderator paging the history while everyone writes
            await store.history(HistoryQuery(limit=20))
            reads += 1
            await asyncio.sleep(0)

    stop = asyncio.Event()
    watching = asyncio.create_task(reader(stop))
    await asyncio.gather(*(writer(n) for n in range(tasks)))
    _, errors = await asyncio.wait_for(other.communicate(), timeout=240)
    stop.set()
    await watching
    assert other.returncode == 0, errors.decode()
    try:
        mine = [job for n in range(tasks) for job in await store.user_jobs(n)]
        assert len(mine) == tasks * per_task
        assert sum(job.status == "done" for job in mine) == tasks * 2
        assert all(len(job.images) == 1 for job in mine if job.status == "done")
        theirs = [job for n in range(4) for job in await store.user_jobs(9000 + n)]
        assert len(theirs) == 80 and {job.status for job in theirs} == {"running"}
        assert reads > 0
        for n in (0, tasks - 1):
            found = await store.find_job_by_message(n * 1000 + per_task - 1)
            assert found is not None and found.prompt == f"mine {n}/{per_task - 1}"
    finally:
        await store.close()


def _hold_write_lock(path: Path, seconds: float, locked: threading.Event) -> None:
    """Another program (a backup, a console) holding the SQLite write lock for a while."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE jobs SET queue_position = 99")
    locked.set()
    threading.Event().wait(seconds)
    conn.execute("COMMIT")
    conn.close()


async def _locked_for(tmp_path: Path, seconds: float) -> threading.Thread:
    """Another connection holds the database's write lock for `seconds`, from now on (join it)."""
    locked = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(tmp_path / "imagine.db", seconds, locked))
    holder.start()
    await asyncio.to_thread(locked.wait)
    return holder


async def _store_with_short_busy_timeout(tmp_path: Path, retry_for_s: float) -> Store:
    database = Database(default_url(tmp_path), busy_timeout_s=0.05, retry_for_s=retry_for_s)
    await database.upgrade()
    return Store(database, ImageFiles(tmp_path))


async def test_a_write_waits_out_a_lock_longer_than_the_busy_timeout(tmp_path: Path) -> None:
    store = await _store_with_short_busy_timeout(tmp_path, retry_for_s=30)
    try:
        holder = await _locked_for(tmp_path, 0.6)
        job = await store.create_job(user_id=1, kind="imagine")  # busy 12x longer than the timeout
        await asyncio.to_thread(holder.join)
        assert (await store.get_job(job.id)) is not None
    finally:
        await store.close()


async def test_a_lock_that_never_ends_gives_a_clear_error_and_writes_nothing(tmp_path: Path) -> None:
    store = await _store_with_short_busy_timeout(tmp_path, retry_for_s=0.3)
    try:
        holder = await _locked_for(tmp_path, 1.5)
        with pytest.raises(DatabaseBusyError, match=r"stayed busy .* please try again"):
            await store.create_job(user_id=1, kind="imagine")
        await asyncio.to_thread(holder.join)
        assert await store.pending_jobs() == []
    finally:
        await store.close()


async def test_a_reader_in_another_process_never_blocks_the_bot_writing(sqlite_store: Store) -> None:
    """WAL mode: the console or a moderator page holding a read open does not stop writes."""
    store = sqlite_store
    before = await store.create_job(user_id=1, kind="imagine", prompt="before")
    reader = sqlite3.connect(store.files.data_dir / "imagine.db", isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM jobs").fetchone() == (1,)  # holds a read snapshot
        job = await store.create_job(user_id=1, kind="imagine", prompt="during")
        await store.mark_running(job.id)
        await store.complete_job(job.id, [raster()], seeds=[1])
        assert reader.execute("SELECT count(*) FROM jobs").fetchone() == (1,)  # its snapshot is stable
        reader.execute("COMMIT")
        assert reader.execute("SELECT status FROM jobs WHERE id = ?", (job.id,)).fetchone() == ("done",)
    finally:
        reader.close()
    assert (await store.get_job(before.id)) is not None
