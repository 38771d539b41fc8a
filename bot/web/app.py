"""The web application on running `Services`, and the server that serves it.

`create_app` builds the aiohttp application (routes, the session/CSRF middleware, the progress
listener); `WebServer` binds it to `IMAGINE_WEB_HOST:IMAGINE_WEB_PORT` (127.0.0.1 unless told
otherwise). The Discord bot starts one beside itself; `imagine web` runs one alone
(`bot.web.cli`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from bot.core.services import Services
from bot.core.web_access import public_base
from bot.web import desk, gallery, images, job_page, region, signin
from bot.web.access import SITE_KEY, STORE_KEY, PublicSite, security
from bot.web.progress import BOARD_KEY, ProgressBoard
from bot.web.services_key import SERVICES_KEY

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
# The biggest request body: a Vary (Region) mask of a 2048x2048 image is well under this; anything
# bigger is refused with 413 before it is read.
MAX_BODY = 4 * 1024 * 1024


def create_app(services: Services, site: PublicSite) -> web.Application:
    """The web app; it adds its progress listener, so build it before the services dispatch."""
    app = web.Application(middlewares=[security], client_max_size=MAX_BODY)
    app[SERVICES_KEY] = services
    app[STORE_KEY] = services.store
    app[SITE_KEY] = site
    board = ProgressBoard()
    app[BOARD_KEY] = board
    services.dispatcher.add_listener(board.listen)
    for module in (signin, gallery, images, job_page, region, desk):
        app.router.add_routes(module.routes)
    app.router.add_static("/static/", STATIC, follow_symlinks=False)
    return app


class WebServer:
    """Imagine Web on a TCP port; `port` 0 picks a free one (`.port` says which after `start`)."""

    def __init__(self, services: Services, host: str, port: int, public_url: str | None) -> None:
        self.services = services
        self.host = host
        self.port = port
        self._public_url = public_url
        self._runner: web.AppRunner | None = None
        self.url = ""

        # Built now, so its progress listener is in place before the services dispatch.
        self.site = PublicSite(
            url=public_url or "", secure=bool(public_url and public_url.startswith("https://"))
        )
        self.app = create_app(services, self.site)

    async def start(self) -> None:
        swept = await self.services.store.sweep_web_tokens()
        if swept:
            log.info("removed %d expired sign-in link(s) and session(s)", swept)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        # Without IMAGINE_WEB_URL, links name the address the server listens on (known only now).
        self.site.url = public_base(self._public_url, self.host, self.port)
        self.url = self.site.url
        log.info("Imagine Web on http://%s:%d (links: %s)", self.host, self.port, self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
