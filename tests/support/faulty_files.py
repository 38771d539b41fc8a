"""Image files on a machine that fails: a disk that fills up, a data directory gone read-only.

Root ignores file permissions and a real full disk needs a mount, so the fault is injected at
the one place the store writes image bytes (`ImageFiles._write_temp`), after half the file is
really on disk, which is what a full disk leaves behind.
"""

from __future__ import annotations

import errno
import os
import tempfile

from storage.files import EncodedImage, ImageFiles


class FaultyFiles(ImageFiles):
    """`ImageFiles` whose writes fail with `error` (an errno) halfway through the file."""

    def __init__(self, data_dir, error: int = errno.ENOSPC) -> None:
        super().__init__(data_dir)
        self.error = error

    def _write_temp(self, job_id: str, item: EncodedImage) -> tuple[str, str, int]:
        data = b"".join(item.pieces)
        fd, temp_name = tempfile.mkstemp(prefix=f"{job_id}-", suffix=".tmp", dir=self.tmp_dir)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError(self.error, os.strerror(self.error), temp_name)
