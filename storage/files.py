"""Image files under the data directory: atomic PNG writes, spread over folders.

A file is first written whole under `images/.tmp/`, flushed to disk, then renamed into place, so
a reader never sees half a PNG and a crash leaves at worst a temp file (swept later) or a
complete file no row points to (an orphan; `Store.sweep_orphans` removes those). Rows are
committed only after the files are in place, so a row always has its file.

Layout: `images/ab/cd/<job id>-<n>.png` (cells) and `images/ab/cd/<job id>-grid.png`, where
`ab/cd` are the first hex digits of the job id: 65,536 folders, so no folder grows huge.
Paths stored in the database are relative to the data directory and use `/`, so the data
directory can move.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from PIL import Image as PILImage

from storage.errors import InvalidInputError

log = logging.getLogger(__name__)

IMAGES_DIR = "images"
TMP_DIR = ".tmp"
GRID_NAME = "grid"
_SAFE_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")  # 36: the column width, a UUID


@runtime_checkable
class RasterImage(Protocol):
    """Raw 8-bit RGB pixels: what `engine.api.ImageData` is (storage may not import the engine)."""

    width: int
    height: int
    rgb: bytes


ImageLike = RasterImage | PILImage.Image


@dataclass(frozen=True)
class StoredFile:
    """A PNG in place on disk, with the facts its `Image` row records."""

    path: str  # relative to the data directory, `/`-separated
    width: int
    height: int
    sha256: str
    bytes: int


def check_job_id(job_id: str) -> str:
    """Job ids become file names; refuse anything that could leave the images folder."""
    if not isinstance(job_id, str) or not _SAFE_JOB_ID.match(job_id):
        raise InvalidInputError(
            f"job id {job_id!r} must be 1-36 letters, digits, '-' or '_' (it names the image files)"
        )
    return job_id


def to_pil(image: ImageLike) -> PILImage.Image:
    """An RGB PIL image from raw RGB pixels or a PIL image, with a clear error for anything else."""
    if isinstance(image, PILImage.Image):
        return image if image.mode == "RGB" else image.convert("RGB")
    if isinstance(image, RasterImage):
        width, height, rgb = image.width, image.height, image.rgb
        if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
            raise InvalidInputError(f"image size must be positive whole numbers, got {width!r}x{height!r}")
        if len(rgb) != width * height * 3:
            raise InvalidInputError(
                f"a {width}x{height} RGB image needs {width * height * 3} bytes, got {len(rgb)}"
            )
        return PILImage.frombytes("RGB", (width, height), bytes(rgb))
    raise InvalidInputError(
        f"cannot store a {type(image).__name__}: "
        "expected an object with width, height and rgb, or a PIL image"
    )


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: on POSIX the directory entry is only on disk after its folder is synced."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ImageFiles:
    """Reads and atomically writes a job's PNG files under `data_dir`."""

    def __init__(self, data_dir: str | Path, *, compress_level: int = 1) -> None:
        # Level 1 encodes several times faster than the default 6 for a few percent more bytes;
        # the PNG is written once per job on the bot's side of the pipeline, where time counts.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.compress_level = compress_level
        self.images_dir = self.data_dir / IMAGES_DIR
        self.tmp_dir = self.images_dir / TMP_DIR

    # -- naming ------------------------------------------------------------------------------

    def relative_path(self, job_id: str, index: int) -> str:
        """Where a job's image lives, relative to the data directory (`index` -1 is the grid)."""
        check_job_id(job_id)
        name = GRID_NAME if index < 0 else str(index)
        shard = job_id.replace("-", "").lower().ljust(4, "0")
        return f"{IMAGES_DIR}/{shard[:2]}/{shard[2:4]}/{job_id}-{name}.png"

    def absolute(self, relative: str) -> Path:
        """The file on disk for a stored relative path; refuses paths outside the data directory."""
        path = (self.data_dir / relative).resolve()
        if not path.is_relative_to(self.data_dir):
            raise InvalidInputError(f"image path {relative!r} is outside the data directory")
        return path

    # -- writing -----------------------------------------------------------------------------

    def encode(self, image: ImageLike) -> tuple[bytes, int, int]:
        picture = to_pil(image)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=self.compress_level)
        return buffer.getvalue(), picture.width, picture.height

    def write(self, job_id: str, index: int, image: ImageLike) -> StoredFile:
        """Encode and write one image atomically (blocking: call it from a worker thread)."""
        stored, folder = self._write(job_id, index, image)
        _fsync_dir(folder)
        return stored

    def write_many(self, job_id: str, images: Iterable[tuple[int, ImageLike]]) -> list[StoredFile]:
        """Write a job's images; every file is complete and durable when this returns.

        The PNGs are encoded in parallel threads (Pillow's encoder releases the GIL): a grid and
        four cells cost about one encode on a machine with cores to spare.
        """
        items = list(images)
        check_job_id(job_id)
        if len(items) > 1 and (os.cpu_count() or 1) > 1:
            workers = min(len(items), os.cpu_count() or 1)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="png") as pool:
                encoded = list(pool.map(lambda item: self.encode(item[1]), items))
        else:
            encoded = [self.encode(image) for _, image in items]
        stored: list[StoredFile] = []
        folders: set[Path] = set()
        for (index, _), png in zip(items, encoded, strict=True):
            item, folder = self._write(job_id, index, png)
            stored.append(item)
            folders.add(folder)
        for folder in folders:
            _fsync_dir(folder)
        return stored

    def _write(
        self, job_id: str, index: int, image: ImageLike | tuple[bytes, int, int]
    ) -> tuple[StoredFile, Path]:
        relative = self.relative_path(job_id, index)
        data, width, height = image if isinstance(image, tuple) else self.encode(image)
        target = self.absolute(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(prefix=f"{job_id}-", suffix=".tmp", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp_name, target)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        digest = hashlib.sha256(data).hexdigest()
        return StoredFile(relative, width, height, digest, len(data)), target.parent

    # -- reading -----------------------------------------------------------------------------

    def read_bytes(self, relative: str) -> bytes:
        return self.absolute(relative).read_bytes()

    def open_image(self, relative: str) -> PILImage.Image:
        """The stored picture as an RGB PIL image, fully loaded (the file is closed again)."""
        with PILImage.open(self.absolute(relative)) as picture:
            return picture.convert("RGB")

    def exists(self, relative: str) -> bool:
        return self.absolute(relative).is_file()

    # -- cleaning ----------------------------------------------------------------------------

    def remove(self, relatives: Iterable[str]) -> int:
        removed = 0
        for relative in relatives:
            try:
                self.absolute(relative).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def sweep_temp(self, older_than_s: float = 3600.0) -> int:
        """Delete temp files left by a crash mid-write.

        Only old ones: another process (the console next to the bot) may be writing right now.
        """
        if not self.tmp_dir.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for path in self.tmp_dir.iterdir():
            try:
                if path.is_file() and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        if removed:
            log.info("removed %d temp file(s) left by an interrupted write", removed)
        return removed

    def stored_files(self) -> Iterator[tuple[str, float]]:
        """Every image file in place (relative path, modification time), temp files excluded."""
        if not self.images_dir.is_dir():
            return
        for path in self.images_dir.glob("*/*/*.png"):
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue
            yield path.relative_to(self.data_dir).as_posix(), mtime


__all__ = ["ImageFiles", "ImageLike", "RasterImage", "StoredFile", "check_job_id", "to_pil"]
