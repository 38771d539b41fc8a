"""Pictures by job id: full size through the store, thumbnails made once and kept.

The request names a job id (a UUID, checked by the route) and an image number, never a path; the
file's path comes from the job's row. Thumbnails live under `<data dir>/thumbs/`, named by job id.
"""

from __future__ import annotations

import asyncio
import io
import logging
from pathlib import Path

from aiohttp import web
from PIL import Image as PILImage

from bot.web.access import STORE_KEY, visible_job
from storage.models import Job

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
JOB_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
THUMB_SIDE = 256


def image_url(job: Job, index: int | None) -> str:
    """The address of image `index` (0-based) of a job, or of its grid when None."""
    return f"/images/{job.id}/{'grid' if index is None else index + 1}.png"


def thumb_url(job: Job) -> str:
    return f"/thumbs/{job.id}.jpg"


@routes.get("/images/{job_id:" + JOB_ID + "}/{which:(grid|[1-4])}.png")
async def full_image(request: web.Request) -> web.StreamResponse:
    job = await visible_job(request, request.match_info["job_id"])
    which = request.match_info["which"]
    if which == "grid":
        picture = job.grid
    else:
        cells = job.cells
        index = int(which) - 1
        picture = cells[index] if index < len(cells) else None
    if picture is None:
        raise web.HTTPNotFound(text="This job has no such image.")
    data = await asyncio.to_thread(request.app[STORE_KEY].files.read_bytes, picture.path)
    return web.Response(
        body=data, content_type="image/png", headers={"Cache-Control": "private, max-age=86400"}
    )


def _thumb_path(data_dir: Path, job_id: str) -> Path:
    return data_dir / "thumbs" / job_id[:2] / f"{job_id}.jpg"


def _make_thumb(source: bytes, target: Path) -> bytes:
    with PILImage.open(io.BytesIO(source)) as opened:
        picture = opened.convert("RGB")
    picture.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=85)
    data = buffer.getvalue()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_bytes(data)
    temporary.replace(target)  # atomic: a reader never sees half a thumbnail
    return data


@routes.get("/thumbs/{job_id:" + JOB_ID + "}.jpg")
async def thumbnail(request: web.Request) -> web.StreamResponse:
    job = await visible_job(request, request.match_info["job_id"])
    picture = job.grid or (job.cells[0] if job.cells else None)
    if picture is None:
        raise web.HTTPNotFound(text="This job has no image yet.")
    store = request.app[STORE_KEY]
    target = _thumb_path(Path(store.files.data_dir), job.id)
    if target.is_file():
        data = await asyncio.to_thread(target.read_bytes)
    else:
        source = await asyncio.to_thread(store.files.read_bytes, picture.path)
        data = await asyncio.to_thread(_make_thumb, source, target)
    return web.Response(
        body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )
