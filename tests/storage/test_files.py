"""Image files: where they go, atomic replacement, refusing paths that leave the data directory."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PIL import Image as PILImage

import storage.files
from storage.errors import InvalidInputError
from storage.files import ImageFiles
from tests.storage.conftest import raster

JOB = "3f2a9c1e-7b4d-4e8f-9a0b-1c2d3e4f5a6b"


def test_files_are_spread_over_folders_by_job_id(tmp_path: Path) -> None:
    files = ImageFiles(tmp_path)
    assert files.relative_path(JOB, 0) == f"images/3f/2a/{JOB}-0.png"
    assert files.relative_path(JOB, -1) == f"images/3f/2a/{JOB}-grid.png"
    other = "a0" + JOB[2:]
    assert files.relative_path(other, 0).split("/")[1:3] == ["a0", "2a"]


def test_write_many_puts_complete_pngs_in_place_and_reports_their_facts(tmp_path: Path) -> None:
    files = ImageFiles(tmp_path)
    stored = files.write_many(JOB, [(0, raster(6, 4, 1)), (1, raster(6, 4, 2)), (-1, raster(12, 8, 3))])
    assert [item.path for item in stored] == [files.relative_path(JOB, i) for i in (0, 1, -1)]
    for item, value in zip(stored, (1, 2, 3), strict=True):
        data = files.read_bytes(item.path)
        assert len(data) == item.bytes and data.startswith(b"\x89PNG")
        assert files.open_image(item.path).tobytes() == raster(item.width, item.height, value).rgb
    assert list(files.tmp_dir.iterdir()) == []  # no temp file left behind


def test_a_failed_write_leaves_the_previous_file_whole_and_no_temp_file(tmp_path: Path, monkeypatch) -> None:
    files = ImageFiles(tmp_path)
    first = files.write(JOB, 0, raster(4, 4, 1))
    before = files.read_bytes(first.path)

    def crash(*args, **kwargs):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="no space left"):
        files.write(JOB, 0, raster(4, 4, 2))
    assert files.read_bytes(first.path) == before
    assert list(files.tmp_dir.iterdir()) == []


@pytest.mark.parametrize("job_id", ["../../etc/passwd", "a/b", "", "x" * 37, "id with space"])
def test_job_ids_that_could_escape_the_images_folder_are_refused(tmp_path: Path, job_id: str) -> None:
    files = ImageFiles(tmp_path)
    with pytest.raises(InvalidInputError, match="job id"):
        files.write(job_id, 0, raster())
    assert not (tmp_path / "images").exists() or list((tmp_path / "images").rglob("*.png")) == []


def test_reading_outside_the_data_directory_is_refused(tmp_path: Path) -> None:
    files = ImageFiles(tmp_path / "data")
    (tmp_path / "secret.png").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="outside the data directory"):
        files.read_bytes("../secret.png")
    with pytest.raises(InvalidInputError, match="outside the data directory"):
        files.absolute(str(tmp_path / "secret.png"))


def test_a_grey_or_transparent_pil_image_is_stored_as_rgb(tmp_path: Path) -> None:
    files = ImageFiles(tmp_path)
    stored = files.write(JOB, 0, PILImage.new("L", (3, 2), 128))
    assert files.open_image(stored.path).getpixel((0, 0)) == (128, 128, 128)


def test_a_job_whose_files_fail_to_sync_puts_none_in_place_and_leaves_the_old_ones(
    tmp_path: Path, monkeypatch
) -> None:

    files = ImageFiles(tmp_path)
    before = files.write_many(JOB, [(0, raster(4, 4, 1)), (1, raster(4, 4, 2)), (-1, raster(8, 8, 3))])
    old = {item.path: files.read_bytes(item.path) for item in before}
    calls, lock = [], threading.Lock()
    real_fsync = os.fsync

    def fsync_failing_on_the_second_file(fd: int) -> None:
        with lock:
            calls.append(fd)
            if len(calls) == 2:
                raise OSError("I/O error")
        real_fsync(fd)

    monkeypatch.setattr(storage.files.os, "fsync", fsync_failing_on_the_second_file)
    with pytest.raises(OSError, match="I/O error"):
        files.write_many(JOB, [(0, raster(4, 4, 7)), (1, raster(4, 4, 8)), (-1, raster(8, 8, 9))])
    assert {path: files.read_bytes(path) for path in old} == old  # not one file of the job changed
    assert list(files.tmp_dir.iterdir()) == []


def test_each_folder_a_job_touched_is_synced_once_new_folders_with_their_parents(
    tmp_path: Path, monkeypatch
) -> None:

    synced: list[Path] = []
    real = storage.files._fsync_dir

    def record(path: Path) -> None:
        synced.append(path)
        real(path)

    monkeypatch.setattr(storage.files, "_fsync_dir", record)
    files = ImageFiles(tmp_path)
    items = [(0, raster(4, 4, 1)), (1, raster(4, 4, 2)), (-1, raster(8, 8, 3))]
    files.write_many(JOB, items)
    shard = files.absolute(files.relative_path(JOB, 0)).parent
    # the new shard folder and every folder whose entries changed because of it
    assert {shard, shard.parent, files.images_dir, files.data_dir} <= set(synced)
    assert len(synced) == len(set(synced))
    synced.clear()
    files.write_many(JOB, items)  # the same folder again: one sync for all three files
    assert synced == [shard]
