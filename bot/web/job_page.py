"""One job: its images, prompt, parameters, seeds, timings and lineage, and its action buttons.

The buttons are the member's Discord buttons (U1-U4, V1-V4, re-roll on a grid; Vary, Upscale,
Zoom, Pan and Make Square on a single image; Vary (Region) on an upscale). Each is a form that
submits through the job service, like a click in Discord. With JavaScript the page posts it in
the background and follows the new job with `/jobs/{id}/progress`, showing the result in place.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.core.dispatcher import LimitError
from bot.core.jobs import Action, JobError, Requester
from bot.core.moderation import BannedError, BlockedError
from bot.core.remix import REMIX_ACTIONS
from bot.prompt import PromptError
from bot.web.access import STORE_KEY, may_see, member, visible_job
from bot.web.images import JOB_ID, image_url, thumb_url
from bot.web.progress import BOARD_KEY
from bot.web.render import page
from bot.web.services_key import SERVICES_KEY
from storage.errors import DatabaseBusyError, JobStateError
from storage.models import Job, JobKind, JobStatus

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

USER_ERRORS = (PromptError, BannedError, BlockedError, LimitError, JobError, JobStateError, DatabaseBusyError)
UPSCALED = frozenset({JobKind.UPSCALE.value, JobKind.UPSCALE_SUBTLE.value, JobKind.UPSCALE_CREATIVE.value})


@dataclass(frozen=True)
class Button:
    name: str  # the form value
    label: str
    action: Action
    options: tuple[tuple[str, Any], ...] = ()


GRID_BUTTONS = (
    *(Button(f"U{i}", f"U{i}", Action.UPSCALE, (("index", i - 1),)) for i in range(1, 5)),
    Button("reroll", "Re-roll", Action.REROLL),
    *(Button(f"V{i}", f"V{i}", Action.VARY, (("index", i - 1),)) for i in range(1, 5)),
)
SINGLE_BUTTONS = (
    Button("vary_subtle", "Vary (Subtle)", Action.VARY_SUBTLE),
    Button("vary_strong", "Vary (Strong)", Action.VARY_STRONG),
    Button("upscale_subtle", "Upscale (Subtle)", Action.UPSCALE_SUBTLE),
    Button("upscale_creative", "Upscale (Creative)", Action.UPSCALE_CREATIVE),
    Button("zoom_2", "Zoom Out 2x", Action.ZOOM, (("zoom", 2.0),)),
    Button("zoom_1_5", "Zoom Out 1.5x", Action.ZOOM, (("zoom", 1.5),)),
    Button("square", "Make Square", Action.SQUARE),
    Button("pan_left", "Pan left", Action.PAN, (("direction", "left"),)),
    Button("pan_right", "Pan right", Action.PAN, (("direction", "right"),)),
    Button("pan_up", "Pan up", Action.PAN, (("direction", "up"),)),
    Button("pan_down", "Pan down", Action.PAN, (("direction", "down"),)),
)
BUTTONS = {button.name: button for button in (*GRID_BUTTONS, *SINGLE_BUTTONS)}
CUSTOM_ZOOM = Button("zoom_custom", "Custom Zoom", Action.ZOOM)  # a form of its own (factor, prompt)


def buttons_for(job: Job) -> tuple[Button, ...]:
    if job.status != JobStatus.DONE or job.hidden:
        return ()
    if len(job.cells) > 1:
        return GRID_BUTTONS
    return SINGLE_BUTTONS if job.cells else ()


def requester(request: web.Request) -> Requester:
    who = member(request)
    return Requester(who.user_id, who.user_name, guild_id=who.guild_id, source="web")


def job_summary(job: Job) -> dict[str, Any]:
    """What the page's script needs to show a job's state and, when done, its images."""
    done = job.status == JobStatus.DONE
    return {
        "job_id": job.id,
        "url": f"/jobs/{job.id}",
        "kind": job.kind,
        "status": job.status,
        "error": job.error,
        "prompt": job.prompt,
        "images": [image_url(job, i) for i in range(len(job.cells))] if done else [],
        "grid": image_url(job, None) if done and job.grid is not None else None,
    }


@routes.get("/jobs/{job_id:" + JOB_ID + "}")
async def job_page(request: web.Request) -> web.Response:
    job = await visible_job(request, request.match_info["job_id"])
    lineage = await request.app[STORE_KEY].lineage(job.id)
    who = member(request)
    return page(
        request,
        "job.html",
        title=job.prompt[:60] or "Job",
        job=job,
        ancestors=[j for j in lineage.ancestors if may_see(who, j)],
        descendants=[j for j in lineage.descendants if may_see(who, j)],
        buttons=buttons_for(job),
        custom_zoom=buttons_for(job) == SINGLE_BUTTONS,
        remix_buttons=[button for button in buttons_for(job) if button.action in REMIX_ACTIONS],
        region=job.kind in UPSCALED and job.status == JobStatus.DONE and not job.hidden,
        image_url=image_url,
        thumb_url=thumb_url,
        summary=job_summary(job),
        finished=JobStatus(job.status).finished,
    )


@routes.post("/jobs/{job_id:" + JOB_ID + "}/action")
async def job_action(request: web.Request) -> web.Response:
    job = await visible_job(request, request.match_info["job_id"])
    form = await request.post()
    name = str(form.get("do", ""))
    wants_json = "application/json" in request.headers.get("Accept", "")
    button = BUTTONS.get(name)
    options: dict[str, Any] = dict(button.options) if button else {}
    if name == CUSTOM_ZOOM.name and buttons_for(job) == SINGLE_BUTTONS:
        # Custom Zoom, as Discord's form: a factor from 1.0 to 2.0 and, optionally, an edited prompt.
        button = CUSTOM_ZOOM
        try:
            options["zoom"] = float(str(form.get("zoom", "")))
        except ValueError:
            return _refuse(wants_json, "The zoom must be a number from 1.0 to 2.0.", 400)
        options["prompt_override"] = str(form.get("prompt", "")).strip()[:4000] or None
    elif button is None or button not in buttons_for(job):
        return _refuse(wants_json, "That action is not available on this job.", 400)
    elif "remix" in form:
        # The Remix form: its edited prompt drives the action; the core refuses what the action
        # cannot take. An unchanged (or emptied) prompt is a plain click, as in Discord's modal.
        text = " ".join(str(form.get("remix", "")).split())[:4000]
        options["prompt_override"] = text if text and text != job.prompt else None
    services = request.app[SERVICES_KEY]
    try:
        new = await services.jobs.derive(requester(request), job.id, button.action, **options)
    except USER_ERRORS as exc:
        return _refuse(wants_json, str(getattr(exc, "user_message", None) or exc), 409)
    log.info("web action %s on job %s made job %s", button.name, job.id, new.id)
    if wants_json:
        return web.json_response(job_summary(new))
    raise web.HTTPSeeOther(f"/jobs/{new.id}")


def _refuse(wants_json: bool, message: str, status: int) -> web.Response:
    if wants_json:
        return web.json_response({"error": message}, status=status)
    return web.Response(text=message, status=status)


@routes.get("/jobs/{job_id:" + JOB_ID + "}/progress")
async def job_progress(request: web.Request) -> web.Response:
    job = await visible_job(request, request.match_info["job_id"])
    summary = job_summary(job)
    update = request.app[BOARD_KEY].latest(job.id)
    summary["step"] = update.step if update else 0
    summary["total"] = update.total if update else 0
    summary["position"] = request.app[SERVICES_KEY].dispatcher.position(job.id)
    return web.json_response(summary)


@routes.post("/imagine")
async def imagine(request: web.Request) -> web.Response:
    """A new prompt from the gallery: the same jobs as `/imagine` in Discord."""
    form = await request.post()
    prompt = str(form.get("prompt", ""))[:4000]
    try:
        jobs = await request.app[SERVICES_KEY].jobs.imagine(requester(request), prompt)
    except USER_ERRORS as exc:
        return _refuse(False, str(getattr(exc, "user_message", None) or exc), 400)
    raise web.HTTPSeeOther(f"/jobs/{jobs[0].id}")
