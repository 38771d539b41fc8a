"""A crash between writing the image files and committing the rows never leaves a `done` job
without its images, and the files left behind are referenced by nothing and can be swept."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.repositories import ImageRepository
from storage.store import Store
from tests.storage.conftest import raster

CRASHING_PROCESS = """
import asyncio, os, sys
from storage.repositories import ImageRepository
from storage.store import Store

original = ImageRepository.replace_for_job

async def rows_staged_then_power_cut(self, job, cells, grid):
    rows = await original(self, job, cells, grid)  # files on disk, rows flushed, not committed
    os._exit(9)

ImageRepository.replace_for_job = rows_staged_then_power_cut

class Raster:
    def __init__(self, value):
        self.width, self.height, self.rgb = 4, 4, bytes([value]) * 48

async def main(data_dir):
    store = await Store.open(None, data_dir)
    job = await store.create_job(user_id=1, kind="imagine", prompt="lost at sea")
    await store.mark_running(job.id)
    print(job.id, flush=True)
    await store.complete_job(job.id, [Raster(n) for n in range(4)], seeds=[1, 2, 3, 4], grid=Raster(9))

asyncio.run(main(sys.argv[1]))
"""


def _pngs(store: Store) -> list[Path]:
    return sorted(store.files.images_dir.glob("*/*/*.png"))


async def test_a_process_killed_before_the_commit_leaves_no_done_job_and_no_rows(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_PROCESS, str(data_dir)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 9, result.stderr  # it really died mid-way
    job_id = result.stdout.strip()

    store = await Store.open(None, data_dir)
    try:
        job = await store.get_job(job_id)
        assert job is not None and job.status == "running" and job.images == []
        assert len(_pngs(store)) == 5  # the files were written before the crash...
        assert [pending.id for pending in await store.pending_jobs()] == [
            job_id
        ]  # ...and the job will run again
        assert await store.sweep_orphans(older_than_s=0) == 5  # nothing referenced them
        assert _pngs(store) == []
        done = await store.complete_job(
            job_id, [raster(4, 4, n) for n in range(4)], seeds=[1, 2, 3, 4], grid=raster(8, 8)
        )
        assert (
            done.status == "done"
            and len(done.images) == 5
            and all(store.files.exists(i.path) for i in done.images)
        )
    finally:
        await store.close()


async def test_an_error_before_the_commit_leaves_the_job_pending_and_a_retry_completes_it(
    sqlite_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = sqlite_store
    job = await store.create_job(user_id=1, kind="imagine")
    await store.mark_running(job.id)

    async def fail(*args, **kwargs):
        raise OSError("disk full while writing rows")

    monkeypatch.setattr(ImageRepository, "replace_for_job", fail)
    with pytest.raises(OSError, match="disk full"):
        await store.complete_job(job.id, [raster(value=1)], seeds=[5], grid=raster(value=2))
    after = await store.get_job(job.id)
    assert after is not None and after.status == "running" and after.images == []
    monkeypatch.undo()
    done = await store.complete_job(job.id, [raster(value=1)], seeds=[5], grid=raster(value=2))
    assert done.status == "done" and len(done.images) == 2
    # the failed attempt removed its own files, so nothing is orphaned and a sweep keeps every file
    assert await store.sweep_orphans(older_than_s=0) == 0
    assert len(_pngs(store)) == 2


async def test_old_temp_files_from_an_interrupted_write_are_swept_at_open(tmp_path: Path) -> None:

    data_dir = tmp_path / "data"
    store = await Store.open(None, data_dir)
    await store.close()
    store.files.tmp_dir.mkdir(parents=True, exist_ok=True)
    stale = store.files.tmp_dir / "abc-half.tmp"
    fresh = store.files.tmp_dir / "def-writing-now.tmp"
    stale.write_bytes(b"half a png")
    fresh.write_bytes(b"another process is writing this")
    two_hours_ago = time.time() - 7200
    os.utime(stale, (two_hours_ago, two_hours_ago))
    reopened = await Store.open(None, data_dir)
    await reopened.close()
    assert not stale.exists() and fresh.exists()
