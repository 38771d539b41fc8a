"""Who may see what on the web: sessions on every request, CSRF on every form, job visibility.

The middleware reads the session cookie into `request["member"]`; without one, every page but the
open ones (`/healthz`, sign-in, static files) redirects to the sign-in page and says nothing about
any job. Every POST must carry the session's CSRF token. A job is visible to its author (unless a
moderator hid it) and to the moderators of its guild; anyone else gets the same 404 as for a job
that does not exist, so job ids cannot be probed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from bot.core.web_access import SESSION_TTL, WebMember, csrf_ok, csrf_token, member_for
from storage.models import Job
from storage.store import Store

log = logging.getLogger(__name__)

COOKIE = "imagine_session"
OPEN_PREFIXES = ("/healthz", "/signin", "/static/")
STORE_KEY = web.AppKey("store", Store)


@dataclass
class PublicSite:
    """The web app's public base URL (IMAGINE_WEB_URL) and whether cookies are `Secure` (https)."""

    url: str
    secure: bool


SITE_KEY = web.AppKey("site", PublicSite)
MEMBER_KEY = web.RequestKey("member", WebMember)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def member(request: web.Request) -> WebMember:
    return request[MEMBER_KEY]


def session_secret(request: web.Request) -> str:
    return str(request.cookies.get(COOKIE, ""))


def form_token(request: web.Request) -> str:
    """The CSRF token the page's forms carry."""
    return csrf_token(session_secret(request))


def _is_open(path: str) -> bool:
    return path == "/healthz" or any(path.startswith(prefix) for prefix in OPEN_PREFIXES)


@web.middleware
async def security(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session, CSRF and the headers every answer carries."""
    path = request.rel_url.raw_path
    if ".." in path or "%2e" in path.lower() or "%2f" in path.lower() or "%5c" in path.lower():
        # A path that tries to climb is refused before routing decodes it.
        raise web.HTTPBadRequest(text="This address is not valid.")
    if request.method == "POST" and not _same_origin(request):
        raise web.HTTPForbidden(text="This form did not come from this site.")
    if not _is_open(request.path):
        found = await member_for(request.app[STORE_KEY], session_secret(request))
        if found is None:
            if request.method != "GET":
                raise web.HTTPForbidden(text="Sign in first: use /web in Discord for a link.")
            raise web.HTTPSeeOther("/signin")
        request[MEMBER_KEY] = found
        if request.method == "POST":
            submitted = request.headers.get("X-CSRF-Token")
            if submitted is None:
                form = await request.post()
                submitted = str(form.get("csrf", "")) or None
            if not csrf_ok(session_secret(request), submitted):
                log.warning("refused a form with a bad CSRF token from user %s", found.user_id)
                raise web.HTTPForbidden(
                    text="This form has expired or did not come from this site; reload the page."
                )
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'",
    )
    if not _is_open(request.path):
        response.headers.setdefault("Cache-Control", "private, no-store")
    return response


def _same_origin(request: web.Request) -> bool:
    """A POST whose browser names another site as its origin is refused, sign-in included (so a
    page elsewhere cannot sign a visitor in as someone else). No Origin header: not a browser's
    cross-site form, and the CSRF token still guards every form behind the sign-in."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = {request.host, urlsplit(request.app[SITE_KEY].url).netloc}
    return urlsplit(origin).netloc in allowed


def may_see(who: WebMember, job: Job) -> bool:
    """The author sees their own visible jobs; the guild's moderators see all of the guild's."""
    if job.deleted:
        return False
    if who.moderator and who.guild_id is not None and job.guild_id == who.guild_id:
        return True
    return job.user_id == who.user_id and not job.hidden


async def visible_job(request: web.Request, job_id: str) -> Job:
    """The job for this member, or 404 (the same for missing and not-yours)."""
    job = await request.app[STORE_KEY].get_job(job_id)
    if job is None or not may_see(member(request), job):
        raise web.HTTPNotFound(text="There is no such job.")
    return job


def set_session_cookie(response: web.StreamResponse, secret: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        secret,
        httponly=True,
        samesite="Lax",
        secure=secure,
        path="/",
        max_age=int(SESSION_TTL.total_seconds()),
    )
