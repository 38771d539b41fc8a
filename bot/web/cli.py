"""`imagine web` (the web app alone) and `imagine web-link` (a sign-in link, for operators and tests).

`imagine web` runs the same `Services` as the bot on the same data directory and store, binds
IMAGINE_WEB_HOST:IMAGINE_WEB_PORT (127.0.0.1:8080 by default), takes up the web jobs an earlier
run left unfinished, and stops gracefully on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from bot.core.services import Services
from bot.core.web_access import DEFAULT_WEB_PORT, WebMember, issue_link, public_base
from bot.logs import setup_logging
from bot.settings import Settings, SettingsError
from bot.web.app import WebServer
from storage.errors import StorageError
from storage.store import Store

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imagine", description="Imagine Web")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("web", help="serve Imagine Web (IMAGINE_WEB_HOST, IMAGINE_WEB_PORT, IMAGINE_WEB_URL)")
    p = sub.add_parser("web-link", help="print a one-time sign-in link (valid 15 minutes)")
    p.add_argument("--user", required=True, type=int, help="the member's Discord user id")
    p.add_argument("--guild", required=True, type=int, help="the guild (server) id they act in")
    p.add_argument("--name", default="", help="the name shown on the pages (default: the user id)")
    p.add_argument("--moderator", action="store_true", help="with moderator rights on that guild")
    p.add_argument("--to", default=None, help="the page to open after sign-in, e.g. /region/JOB_ID")
    return parser


async def print_link(args: argparse.Namespace, settings: Settings) -> int:
    store = await Store.open(settings.database_url, settings.data_dir, wait_s=settings.database_wait_s)
    try:
        who = WebMember(args.user, args.name or str(args.user), args.guild, args.moderator)
        base = public_base(settings.web_url, settings.web_host, settings.web_port)
        print(await issue_link(store, base, who, target=args.to))
    finally:
        await store.close()
    return 0


async def serve(settings: Settings, stopping: asyncio.Event | None = None) -> int:
    services = await Services.open(settings, role="web")
    server = WebServer(services, settings.web_host, settings.web_port or DEFAULT_WEB_PORT, settings.web_url)
    try:
        await services.start_dispatching(recover=lambda job: job.source == "web")
        await server.start()
        print(f"Imagine Web: {server.url}", flush=True)
        if stopping is None:
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
    finally:
        await server.stop()
        await services.stop(STOP_GRACE_S)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"imagine: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_json)
    try:
        if args.command == "web-link":
            return asyncio.run(print_link(args, settings))
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 130
    except (StorageError, OSError) as exc:  # a locked database, a port in use: one sentence
        print(f"imagine: {exc}", file=sys.stderr)
        return 1
