"""Faults of the machine (issue 12, part 4): each ends in a sentence, and nothing is lost.

Real SQLite files, a real second process holding the database lock, real damaged files.
"""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.core.dispatcher import Dispatcher
from storage.db import Database, default_url
from storage.errors import CorruptDatabaseError, DatabaseBusyError
from storage.store import Store
from tests.support.faulty_files import FaultyFiles
from tests.support.lease_holder import stand_in_request
from tests.support.stand_in_engine import StandInEngine

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("error", "sentence"),
    [(errno.ENOSPC, "the bot's disk is full"), (errno.EROFS, "the bot's data directory is read-only")],
)
async def test_a_disk_fault_while_writing_images_fails_the_job_with_a_sentence(
    tmp_path: Path, error: int, sentence: str
) -> None:
    data_dir = tmp_path / "data"
    opened = await Store.open(None, data_dir)
    store = Store(opened.db, FaultyFiles(data_dir, error))
    dispatcher = Dispatcher(store, StandInEngine(), stand_in_request)
    await dispatcher.start()
    try:
        job = await store.create_job(kind="imagine", user_id=1, prompt="x", **dispatcher.owner.fields())
        updates = dispatcher.subscribe(job.id)
        await dispatcher.submit(job)
        final = [update async for update in updates][-1]
        assert final.status == "failed" and final.error == f"the images could not be saved: {sentence}"
        row = await store.get_job(job.id)
        assert row.status == "failed" and row.error == final.error and row.images == []
        assert not list((data_dir / "images").rglob("*.png"))  # nothing half-written is served
    finally:
        await dispatcher.stop(grace_s=0)
        await store.close()


def test_a_corrupt_database_file_is_named_refused_and_never_overwritten(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "imagine.db"
    garbage = b"this is not an sqlite file" * 200
    database.write_bytes(garbage)
    with pytest.raises(CorruptDatabaseError, match=str(database)):
        asyncio.run(Store.open(None, data_dir))
    assert database.read_bytes() == garbage
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_")}
    env.update(IMAGINE_DATA_DIR=str(data_dir), DISCORD_TOKEN="x", IMAGINE_DEVICE="cpu")
    done = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and str(database) in done.stderr and "Traceback" not in done.stderr
    assert database.read_bytes() == garbage


LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


async def test_a_database_locked_by_another_process_waits_a_bounded_time_then_says_so(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = await Store.open(None, data_dir)
    await store.close()
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(data_dir / "imagine.db"), "10"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout.readline().strip() == "locked"
        database = Database(default_url(data_dir), busy_timeout_s=0.2, retry_for_s=1.0)
        busy = Store(database, store.files)
        started = time.monotonic()
        with pytest.raises(DatabaseBusyError, match="please try again in a moment"):
            await busy.create_job(kind="imagine", user_id=1, prompt="x")
        waited = time.monotonic() - started
        assert 1.0 <= waited < 5.0  # bounded: well before the other process lets go at 10 s
        await busy.close()
    finally:
        locker.kill()
        locker.wait()
