"""Where the console writes: results (text or one JSON object a job), errors, the progress bar on a TTY."""

from __future__ import annotations

import json
import logging
from typing import Any, TextIO

from bot.console.arguments import JOB_FIELDS
from bot.core.dispatcher import JobUpdate
from storage.models import Job, JobStatus
from storage.store import Store

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class Output:
    """Where results, errors and the progress bar go (stdout, stderr; the bar only on a TTY)."""

    def __init__(self, stdout: TextIO, stderr: TextIO, as_json: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.as_json = as_json
        self.show_progress = not as_json and isatty(stderr)
        self._bar_drawn = False

    def json(self, obj: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        self.clear_bar()
        self.stderr.write(f"imagine: error: {message}\n")
        self.stderr.flush()

    def progress(self, job_id: str, update: JobUpdate) -> None:
        if not self.show_progress:
            return
        short = job_id[:8]
        if update.status == JobStatus.QUEUED and update.position:
            text = f"job {short}: queued, position {update.position}"
        elif update.status == JobStatus.RUNNING and update.total:
            width = 30
            filled = int(width * update.step / update.total)
            text = f"job {short}: [{'#' * filled}{'.' * (width - filled)}] {update.step}/{update.total}"
        elif update.status == JobStatus.RUNNING:
            text = f"job {short}: starting"
        else:
            self.clear_bar()
            return
        self.stderr.write("\r" + text.ljust(60))
        self.stderr.flush()
        self._bar_drawn = True

    def clear_bar(self) -> None:
        if self._bar_drawn:
            self.stderr.write("\r" + " " * 60 + "\r")
            self.stderr.flush()
            self._bar_drawn = False


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def job_json(store: Store, job: Job) -> dict[str, Any]:
    """The DESIGN.md job object. Paths are absolute, so they work from any directory."""
    cells = job.cells
    grid = job.grid
    return {
        "job_id": job.id,
        "parent_id": job.parent_id,
        "kind": job.kind,
        "status": job.status,
        "width": job.width,
        "height": job.height,
        "seeds": [image.seed for image in cells] if cells else list((job.params or {}).get("seeds") or []),
        "images": [str(store.files.absolute(image.path)) for image in cells],
        "grid": str(store.files.absolute(grid.path)) if grid is not None else None,
        "error": job.error if job.status != JobStatus.DONE else None,
    }


def error_json(message: str) -> dict[str, Any]:
    obj: dict[str, Any] = dict.fromkeys(JOB_FIELDS)
    obj["error"] = message
    return obj


def describe(store: Store, job: Job, out: Output) -> None:
    """The text form of a finished job: id and status, then the grid (or the image) path."""
    data = job_json(store, job)
    size = f"{job.width}x{job.height}" if job.width else "?"
    seed = f", seed {job.seed}" if job.seed is not None else ""
    out.line(f"job {job.id}: {job.status} ({job.kind}, {size}{seed})")
    if data["grid"]:
        out.line(f"  grid:  {data['grid']}")
        for i, path in enumerate(data["images"], start=1):
            out.line(f"  {i}:     {path}")
    elif data["images"]:
        out.line(f"  image: {data['images'][0]}")
    if data["error"]:
        out.line(f"  error: {data['error']}")
