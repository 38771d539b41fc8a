"""Image files under the data directory: atomic PNG writes, spread over folders.

A file is first written whole under `images/.tmp/`, flushed to disk, then renamed into place, so
a reader never sees half a PNG and a crash leaves at worst a temp file (swept later) or a
complete file no row points to (an orphan; `Store.sweep_orphans` removes those). Rows are
committed only after the files are in place, so a row always has its file.

Layout: `images/ab/cd/<job id>-<tag>-<n>.png` (cells) and `images/ab/cd/<job id>-<tag>-grid.png`,
where `<tag>` is unique to the completion that wrote them and `ab/cd` are the first hex digits of
the job id: 65,536 folders, so no folder grows huge.
Paths stored in the database are relative to the data directory and use `/`, so the data
directory can move.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image as PILImage

from storage import png
from storage.errors import InvalidInputError

log = logging.getLogger(__name__)

IMAGES_DIR = "images"
TMP_DIR = ".tmp"
GRID_NAME = "grid"
_SAFE_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")  # 36: the column width, a UUID


@runtime_checkable
class RasterImage(Protocol):
    """Raw 8-bit RGB pixels: what `engine.api.ImageData` is (storage may not import the engine)."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    @property
    def rgb(self) -> bytes: ...


@dataclass(frozen=True)
class EncodedImage:
    """A picture already encoded as PNG (the file's pieces, to be joined) and its size.

    The store accepts one wherever it takes a picture and writes it as it is: a stored image
    copied to a new job (U1-U4) need not be decoded and encoded again.
    """

    pieces: tuple[bytes, ...]
    width: int
    height: int


ImageLike = RasterImage | PILImage.Image | EncodedImage


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


def to_pixels(image: ImageLike) -> np.ndarray:
    """(height, width, 3) uint8 RGB pixels, a view of raw RGB bytes where possible (no copy).

    Anything else gets a clear error, raised before any file is touched.
    """
    if isinstance(image, PILImage.Image):
        return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    if isinstance(image, RasterImage):
        width, height, rgb = image.width, image.height, image.rgb
        if not (isinstance(width, int) and isinstance(height, int)) or width <= 0 or height <= 0:
            raise InvalidInputError(f"image size must be positive whole numbers, got {width!r}x{height!r}")
        if len(rgb) != width * height * 3:
            raise InvalidInputError(
                f"a {width}x{height} RGB image needs {width * height * 3} bytes, got {len(rgb)}"
            )
        return np.frombuffer(rgb, dtype=np.uint8).reshape(height, width, 3)
    raise InvalidInputError(
        f"cannot store a {type(image).__name__}: "
        "expected an object with width, height and rgb, or a PIL image"
    )


def _make_dirs(folder: Path) -> list[Path]:
    """Create `folder` and missing parents; returns those it created (their parents need a sync)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(exist_ok=True)
    return missing


def _fsync_dir(path: Path) -> None:
    """Make a rename durable: on POSIX the directory entry is only on disk after its folder is synced."""
    if os.name != "posix":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _pool() -> ThreadPoolExecutor:
    """The process's PNG and fsync workers, started once (threads cost ~0.1 ms each to start).

    More threads than cores on purpose: besides the compression (which releases the GIL) they
    wait on fsync, and concurrent fsyncs share the filesystem's journal commits.
    """
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            workers = max(4, min(16, (os.cpu_count() or 1) * 2))
            _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="imagine-files")
        return _POOL


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


class ImageFiles:
    """Reads and atomically writes a job's PNG files under `data_dir`."""

    def __init__(self, data_dir: str | Path, *, deflater: png.Deflater = png.DEFAULT_DEFLATER) -> None:
        # Level 1 of a fast deflate: the PNG is written once per job, on the path between the
        # engine finishing and the user seeing the result, where every millisecond shows.
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.deflater = deflater
        self.images_dir = self.data_dir / IMAGES_DIR
        self.tmp_dir = self.images_dir / TMP_DIR

    # -- naming ------------------------------------------------------------------------------

    def relative_path(self, job_id: str, index: int, tag: str = "") -> str:
        """Where a job's image lives, relative to the data directory (`index` -1 is the grid).

        `tag` tells one completion's files from another's: two runs of the same job that race
        to complete it then never overwrite (or, for the loser, delete) each other's files.
        """
        check_job_id(job_id)
        name = GRID_NAME if index < 0 else str(index)
        shard = job_id.replace("-", "").lower().ljust(4, "0")
        stem = f"{job_id}-{tag}" if tag else job_id
        return f"{IMAGES_DIR}/{shard[:2]}/{shard[2:4]}/{stem}-{name}.png"

    def absolute(self, relative: str) -> Path:
        """The file on disk for a stored relative path; refuses paths outside the data directory."""
        path = (self.data_dir / relative).resolve()
        if not path.is_relative_to(self.data_dir):
            raise InvalidInputError(f"image path {relative!r} is outside the data directory")
        return path

    # -- writing -----------------------------------------------------------------------------

    def encode_many(self, images: Sequence[ImageLike]) -> list[EncodedImage]:
        """Encode pictures as PNG, all their bands at once on the worker threads (no file is touched).

        Blocking: call it from a worker thread. A picture that is not RGB pixels is refused with
        `InvalidInputError` before any work starts.
        """
        results: list[EncodedImage | None] = [
            image if isinstance(image, EncodedImage) else None for image in images
        ]
        todo = [(n, to_pixels(image)) for n, image in enumerate(images) if results[n] is None]
        pictures = [pixels for _, pixels in todo]
        pool = _pool() if len(pictures) > 1 or sum(p.size for p in pictures) > png.BAND_BYTES else None
        pieces = png.encode_many(pictures, run=pool.map if pool else None, deflater=self.deflater)
        for (n, pixels), parts in zip(todo, pieces, strict=True):
            results[n] = EncodedImage(tuple(parts), pixels.shape[1], pixels.shape[0])
        return results  # type: ignore[return-value]  # every slot is filled now

    def write(self, job_id: str, index: int, image: ImageLike) -> StoredFile:
        """Encode and write one image atomically (blocking: call it from a worker thread)."""
        return self.write_many(job_id, [(index, image)])[0]

    def write_many(self, job_id: str, images: Iterable[tuple[int, ImageLike]]) -> list[StoredFile]:
        """Encode and write a job's images; every file is complete and durable when this returns."""
        check_job_id(job_id)
        items = list(images)
        encoded = self.encode_many([image for _, image in items])
        return self.put_many(job_id, [(index, png_) for (index, _), png_ in zip(items, encoded, strict=True)])

    def put_many(
        self, job_id: str, encoded: Sequence[tuple[int, EncodedImage]], tag: str = ""
    ) -> list[StoredFile]:
        """Put encoded images in place atomically and durably, with one sync pass for all of them.

        Every temp file is written and fsynced (concurrently: the filesystem folds the syncs into
        few journal commits), then all are renamed into place, then each folder that changed is
        synced once. Until the renames nothing is visible; if anything fails before them, the
        temp files are removed and the images already in place stay as they were.
        """
        relatives = [self.relative_path(job_id, index, tag) for index, _ in encoded]  # checks the id
        targets = [self.absolute(relative) for relative in relatives]
        created: set[Path] = set()
        for folder in {target.parent for target in targets}:
            created.update(_make_dirs(folder))
        if not self.tmp_dir.is_dir():
            created.update(_make_dirs(self.tmp_dir))
        written: list[tuple[str, str, int]] = []  # temp name, sha256, size
        try:
            futures = [_pool().submit(self._write_temp, job_id, item) for _, item in encoded]
            errors = []
            for future in futures:  # wait for all, so no temp file is left behind unseen
                try:
                    written.append(future.result())
                except BaseException as exc:  # each failure must be seen
                    errors.append(exc)
            if errors:
                raise errors[0]
            for (temp_name, _, _), target in zip(written, targets, strict=True):
                os.replace(temp_name, target)
        except BaseException:
            for temp_name, _, _ in written:
                Path(temp_name).unlink(missing_ok=True)
            raise
        # A rename is durable once its folder is synced; a new folder once its parent is.
        folders = {target.parent for target in targets} | {folder.parent for folder in created}
        list(_pool().map(_fsync_dir, folders))
        return [
            StoredFile(relative, item.width, item.height, digest, size)
            for relative, (_, item), (_, digest, size) in zip(relatives, encoded, written, strict=True)
        ]

    def _write_temp(self, job_id: str, item: EncodedImage) -> tuple[str, str, int]:
        """Write one temp file and sync it; returns its name, the PNG's sha256 and its size."""
        data = b"".join(item.pieces)
        fd, temp_name = tempfile.mkstemp(prefix=f"{job_id}-", suffix=".tmp", dir=self.tmp_dir)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        return temp_name, hashlib.sha256(data).hexdigest(), len(data)

    # -- reading -----------------------------------------------------------------------------

    def read_bytes(self, relative: str) -> bytes:
        return self.absolute(relative).read_bytes()

    def load_encoded(self, relative: str) -> EncodedImage:
        """A stored PNG as it is, to store again under another job without re-encoding it."""
        data = self.read_bytes(relative)
        if data[:8] != png.SIGNATURE or data[12:16] != b"IHDR":
            raise InvalidInputError(f"{relative!r} is not a PNG file")
        width, height = struct.unpack(">II", data[16:24])
        return EncodedImage((data,), width, height)

    def open_image(self, relative: str) -> PILImage.Image:
        """The stored picture as an RGB PIL image, fully loaded (the file is closed again)."""
        with PILImage.open(self.absolute(relative)) as picture:
            return picture.convert("RGB")

    def read_text(self, relative: str) -> dict[str, str]:
        """The stored picture's PNG text chunks (how it was made), without decoding its pixels."""
        with PILImage.open(self.absolute(relative)) as picture:
            return {str(key): str(value) for key, value in getattr(picture, "text", {}).items()}

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


__all__ = [
    "EncodedImage",
    "ImageFiles",
    "ImageLike",
    "RasterImage",
    "StoredFile",
    "check_job_id",
    "to_pixels",
]
