"""The gallery: a member's own jobs, newest first, a page at a time (keyset, never OFFSET).

Filters: kind, a date range (`since` inclusive, `until` inclusive of its whole day) and words of
the prompt. A moderator's hidden jobs do not show. The "older" link carries the store's cursor.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from aiohttp import web

from bot.web.access import STORE_KEY, member
from bot.web.images import thumb_url
from bot.web.render import page
from storage.errors import InvalidInputError
from storage.models import JobKind
from storage.queries import HistoryQuery

routes = web.RouteTableDef()
PAGE_SIZE = 24
KINDS = [kind.value for kind in JobKind]


def parse_day(text: str, name: str) -> date | None:
    """A `YYYY-MM-DD` form field, or None when empty; a clear 400 otherwise."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be a date like 2026-12-06, got {text[:40]!r}") from None


def day_range(since: date | None, until: date | None) -> tuple[datetime | None, datetime | None]:
    start = datetime.combine(since, time(), UTC) if since else None
    end = datetime.combine(until + timedelta(days=1), time(), UTC) if until else None
    return start, end


@routes.get("/")
async def gallery(request: web.Request) -> web.Response:
    who = member(request)
    query = request.query
    kind = query.get("kind", "")
    if kind and kind not in KINDS:
        raise web.HTTPBadRequest(text=f"kind must be one of {', '.join(KINDS)}")
    since, until = parse_day(query.get("since", ""), "since"), parse_day(query.get("until", ""), "until")
    start, end = day_range(since, until)
    words = query.get("q", "")[:200]
    try:
        result = await request.app[STORE_KEY].history(
            HistoryQuery(
                user_id=who.user_id,
                text=words or None,
                kind=kind or None,
                since=start,
                until=end,
                limit=PAGE_SIZE,
                before=query.get("before") or None,
                include_hidden=False,
            )
        )
    except InvalidInputError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    filters = {"kind": kind, "since": query.get("since", ""), "until": query.get("until", ""), "q": words}
    return page(
        request,
        "gallery.html",
        title="Your images",
        jobs=result.jobs,
        next_cursor=result.next_cursor,
        filters=filters,
        kinds=KINDS,
        thumb_url=thumb_url,
    )
