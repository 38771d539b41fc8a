"""Sign-in and sign-out pages.

Opening a sign-in link shows a "Continue" button rather than signing in at once: Discord (and
mail scanners) fetch links to preview them, and a GET that used the link up would sign a robot in
and leave the member with a dead link. The POST that uses it needs no session; the link's secret
is its own proof.
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.core.web_access import SignInError, redeem_link, sign_out
from bot.web.access import COOKIE, SITE_KEY, STORE_KEY, session_secret, set_session_cookie
from bot.web.render import page

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
TOKEN = r"[A-Za-z0-9_\-]{20,100}"


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


@routes.get("/signin")
async def signin_page(request: web.Request) -> web.Response:
    return page(request, "signin.html", title="Sign in", token=None, error=None)


@routes.get("/signin/{token:" + TOKEN + "}")
async def signin_confirm(request: web.Request) -> web.Response:
    return page(request, "signin.html", title="Sign in", token=request.match_info["token"], error=None)


@routes.post("/signin/{token:" + TOKEN + "}")
async def signin(request: web.Request) -> web.Response:
    try:
        secret, who, target = await redeem_link(request.app[STORE_KEY], request.match_info["token"])
    except SignInError as exc:
        return page(request, "signin.html", title="Sign in", token=None, error=str(exc), status=403)
    log.info("web sign-in by user %s (guild %s, moderator %s)", who.user_id, who.guild_id, who.moderator)
    response = web.HTTPSeeOther(target or "/")
    set_session_cookie(response, secret, secure=request.app[SITE_KEY].secure)
    raise response


@routes.post("/signout")
async def signout(request: web.Request) -> web.Response:
    await sign_out(request.app[STORE_KEY], session_secret(request))
    response = web.HTTPSeeOther("/signin")
    response.del_cookie(COOKIE, path="/")
    raise response
