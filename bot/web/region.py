"""Vary (Region): the canvas editor for an upscaled image, and the form that submits its mask.

The page draws on a canvas over the image and posts a PNG mask of the image's size (white: redraw)
with the prompt; the job service checks the mask and queues the inpainting job.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.core.region import REGION_SOURCES
from bot.web.access import visible_job
from bot.web.images import JOB_ID, image_url
from bot.web.job_page import USER_ERRORS, job_summary, requester
from bot.web.render import page
from bot.web.services_key import SERVICES_KEY
from storage.models import Job, JobStatus

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


async def region_source(request: web.Request) -> Job:
    job = await visible_job(request, request.match_info["job_id"])
    if job.kind not in REGION_SOURCES or job.status != JobStatus.DONE or len(job.cells) != 1:
        raise web.HTTPNotFound(text="Vary (Region) works on an upscaled image; use U1-U4 first.")
    return job


@routes.get("/region/{job_id:" + JOB_ID + "}")
async def editor(request: web.Request) -> web.Response:
    job = await region_source(request)
    return page(
        request, "region.html", title="Vary (Region)", job=job, image=job.cells[0], image_url=image_url
    )


@routes.post("/region/{job_id:" + JOB_ID + "}")
async def submit(request: web.Request) -> web.Response:
    job = await region_source(request)
    form = await request.post()
    upload = form.get("mask")
    mask = upload.file.read() if isinstance(upload, web.FileField) else b""
    prompt = str(form.get("prompt", ""))[:4000]
    try:
        new = await request.app[SERVICES_KEY].jobs.region(requester(request), job.id, mask, prompt)
    except USER_ERRORS as exc:
        return web.json_response({"error": str(getattr(exc, "user_message", None) or exc)}, status=400)
    log.info("web Vary (Region) on job %s made job %s", job.id, new.id)
    return web.json_response(job_summary(new))
