"""The moderator's desk: the guild's history, bulk hide/unhide, bans, banned words, reports, audit.

For the moderators of the session's guild only (a member gets 403). Every action goes through
the same store methods as Discord's `/mod` commands, which write the same audit rows in the same
transaction as the change. A job of another guild is refused like one that does not exist.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from bot.core import moderation
from bot.core.durations import format_until, parse_duration
from bot.core.moderation import RuleError, rule_text, validate_rule
from bot.core.web_access import WebMember
from bot.web.access import STORE_KEY, member
from bot.web.gallery import day_range, parse_day
from bot.web.images import thumb_url
from bot.web.render import page
from storage.errors import InvalidInputError, NotFoundError
from storage.models import JobStatus, ReportState
from storage.queries import HistoryQuery

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
PAGE_SIZE = 50
MAX_BULK = 200
STATUSES = [status.value for status in JobStatus]


def moderator(request: web.Request) -> WebMember:
    who = member(request)
    if not who.moderator or who.guild_id is None:
        raise web.HTTPForbidden(text="The moderator's desk is for this server's moderators.")
    return who


def _user_id(text: str, what: str) -> int | None:
    text = text.strip().strip("<@!>")
    if not text:
        return None
    if not text.isdigit() or len(text) > 20:
        raise web.HTTPBadRequest(text=f"{what} must be a Discord user id (digits), got {text[:40]!r}")
    return int(text)


async def _desk(request: web.Request, note: str | None = None, status: int = 200) -> web.Response:
    who = moderator(request)
    store = request.app[STORE_KEY]
    query = request.query
    state = query.get("status", "")
    if state and state not in STATUSES:
        raise web.HTTPBadRequest(text=f"status must be one of {', '.join(STATUSES)}")
    hidden = {"yes": True, "no": False}.get(query.get("hidden", ""))
    start, end = day_range(
        parse_day(query.get("since", ""), "since"), parse_day(query.get("until", ""), "until")
    )
    try:
        history = await store.history(
            HistoryQuery(
                guild_id=who.guild_id,
                user_id=_user_id(query.get("user", ""), "user"),
                status=state or None,
                since=start,
                until=end,
                hidden=hidden,
                reported=query.get("reported") == "yes",
                limit=PAGE_SIZE,
                before=query.get("before") or None,
            )
        )
    except InvalidInputError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    now = moderation.clock()
    filters: dict[str, Any] = {
        name: query.get(name, "") for name in ("user", "status", "since", "until", "hidden", "reported")
    }
    return page(
        request,
        "desk.html",
        status=status,
        title="Moderator's desk",
        note=note,
        jobs=history.jobs,
        next_cursor=history.next_cursor,
        filters=filters,
        statuses=STATUSES,
        bans=await store.bans(who.guild_id, now=now),
        words=await store.banned_words(who.guild_id),
        reports=await store.reports(who.guild_id, state=ReportState.OPEN.value),
        audit=await store.audit_log(who.guild_id, limit=50),
        format_until=format_until,
        rule_text=rule_text,
        thumb_url=thumb_url,
    )


@routes.get("/mod")
async def desk(request: web.Request) -> web.Response:
    return await _desk(request)


@routes.post("/mod/hide")
async def bulk_hide(request: web.Request) -> web.Response:
    who = moderator(request)
    store = request.app[STORE_KEY]
    form = await request.post()
    hide = form.get("do") == "hide"
    reason = str(form.get("reason", "")).strip()[:500]
    job_ids = list(dict.fromkeys(str(value) for value in form.getall("job", [])))[:MAX_BULK]
    if not job_ids:
        return await _desk(request, "Tick at least one job first.", status=400)
    jobs = [await store.get_job(job_id) for job_id in job_ids]
    if any(job is None or job.guild_id != who.guild_id for job in jobs):
        return await _desk(
            request, "Some of those jobs are not in this server; nothing was changed.", status=400
        )
    changed = 0
    for job in jobs:
        assert job is not None
        if bool(job.hidden) != hide:
            await store.set_hidden(job.id, hide, who.user_id, reason if hide else "")
            changed += 1
    log.info(
        "web desk: user %s %s %d job(s) in guild %s",
        who.user_id,
        "hid" if hide else "unhid",
        changed,
        who.guild_id,
    )
    verb = "Hid" if hide else "Unhid"
    return await _desk(request, f"{verb} {changed} job(s).")


@routes.post("/mod/ban")
async def ban(request: web.Request) -> web.Response:
    who = moderator(request)
    form = await request.post()
    target = _user_id(str(form.get("user", "")), "user")
    if target is None:
        return await _desk(request, "Give the user id to ban.", status=400)
    if target == who.user_id:
        return await _desk(request, "You can't ban yourself.", status=400)
    reason = str(form.get("reason", "")).strip()[:500]
    try:
        length = parse_duration(str(form.get("duration", "")))
    except ValueError as exc:
        return await _desk(request, str(exc), status=400)
    now = moderation.clock()
    record = await request.app[STORE_KEY].ban(
        target, who.guild_id, reason, who.user_id, expires_at=now + length if length else None
    )
    return await _desk(request, f"Banned {target} {format_until(record.expires_at)}.")


@routes.post("/mod/unban")
async def unban(request: web.Request) -> web.Response:
    who = moderator(request)
    form = await request.post()
    target = _user_id(str(form.get("user", "")), "user")
    if target is None or not await request.app[STORE_KEY].unban(target, who.guild_id, who.user_id):
        return await _desk(request, "That user is not banned on this server.", status=400)
    return await _desk(request, f"Lifted the ban on {target}.")


@routes.post("/mod/words/add")
async def word_add(request: web.Request) -> web.Response:
    who = moderator(request)
    form = await request.post()
    regex = form.get("regex") == "yes"
    try:
        stored = validate_rule(str(form.get("pattern", "")), regex)
    except RuleError as exc:
        return await _desk(request, str(exc), status=400)
    store = request.app[STORE_KEY]
    if any(
        rule.pattern == stored and bool(rule.is_regex) == regex
        for rule in await store.banned_words(who.guild_id)
    ):
        return await _desk(request, f"{stored} is already on the list.", status=400)
    await store.add_banned_word(who.guild_id, stored, regex, who.user_id)
    return await _desk(request, f"Added {stored}. Prompts containing it are refused from now on.")


@routes.post("/mod/words/remove")
async def word_remove(request: web.Request) -> web.Response:
    who = moderator(request)
    form = await request.post()
    pattern = str(form.get("pattern", "")).strip()
    if not await request.app[STORE_KEY].remove_banned_word(who.guild_id, pattern, who.user_id):
        return await _desk(request, "That rule is not on this server's list.", status=400)
    return await _desk(request, f"Removed {pattern}.")


@routes.post(r"/mod/reports/{report_id:\d{1,18}}")
async def resolve_report(request: web.Request) -> web.Response:
    who = moderator(request)
    form = await request.post()
    state = str(form.get("state", ""))
    store = request.app[STORE_KEY]
    report_id = int(request.match_info["report_id"])
    open_reports = {report.id for report in await store.reports(who.guild_id, state=ReportState.OPEN.value)}
    if report_id not in open_reports:
        return await _desk(request, "There is no such open report on this server.", status=400)
    try:
        await store.resolve_report(report_id, who.user_id, state)
    except (InvalidInputError, NotFoundError) as exc:
        return await _desk(request, str(exc), status=400)
    return await _desk(request, f"Marked report {report_id} {state}.")
