"""`imagine-bot`: the Discord bot process.

Startup order: settings, the store (migrations), the engine process, the bot (so its listener
exists before anything finishes), then recovery of the Discord jobs a previous run left queued or
running, then the Discord connection. SIGTERM and SIGINT close Discord first, then stop the
dispatcher (running jobs finish or go back to queued), the engine and the store.

`IMAGINE_DISCORD_API_BASE` and `IMAGINE_DISCORD_GATEWAY_URL` point discord.py at another Discord
(a fake one on loopback for the wire-level test); leave them unset for the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.core.services import Services
from bot.discord.app import create_bot
from bot.health import start_status
from bot.logs import setup_logging
from bot.settings import Settings, SettingsError
from bot.web.app import WebServer
from engine.api import EngineClient
from storage.errors import StorageError

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0  # how long running jobs may take to finish on SIGTERM before going back to queued


def point_at_discord(api_base: str | None, gateway_url: str | None) -> None:
    """Send REST calls to `api_base` and the gateway connection to `gateway_url`.

    discord.py builds every REST URL (webhooks and interaction callbacks included) from
    `Route.BASE`, and an unsharded client opens its first gateway connection at
    `DiscordWebSocket.DEFAULT_GATEWAY`; later resumes use the URL the gateway's READY names.
    """

    if api_base:
        Route.BASE = api_base.rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


async def run(
    settings: Settings,
    *,
    engine: EngineClient | None = None,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run the bot until SIGTERM/SIGINT (or until `stopping` is set), then shut down gracefully.

    `engine` replaces the one the settings would build, and `stopping` stands in for a signal:
    both are for running the bot inside another program (the tests); the process passes neither.
    """

    point_at_discord(settings.discord_api_base, settings.discord_gateway_url)
    services = await Services.open(settings, engine=engine, role="bot")
    bot = None
    status = None
    web = None
    try:
        # The bot adds its dispatcher listener here, before any job runs, so a recovered job's
        # result is posted even when it finishes before Discord is connected.
        bot = create_bot(services)
        status = await start_status(services, bot)  # metrics count the recovered jobs too
        if settings.web_port is not None:
            # Imagine Web beside the bot, on the same services (its progress listener is added
            # here too, before any job runs).
            web = WebServer(services, settings.web_host, settings.web_port, settings.web_url)
            await web.start()
        # With the web app served here, this process also finishes the web's unfinished jobs.
        sources = ("discord", "web") if web is not None else ("discord",)
        recovered = await services.start_dispatching(recover=lambda job: job.source in sources)
        if recovered:
            log.info("recovered %d Discord job(s)", len(recovered))
        if stopping is None:
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, stopping.set)
        client = asyncio.create_task(bot.start(settings.require_discord_token()), name="discord")
        waiter = asyncio.create_task(stopping.wait(), name="signals")
        done, _ = await asyncio.wait({client, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            log.info("signal received: shutting down")
            # Running jobs finish (or go back to queued) while Discord is still connected, so a
            # result that arrives now is posted rather than left unseen in the store.
            await services.dispatcher.stop(STOP_GRACE_S)
            await bot.messenger.drain(timeout=10.0)
        waiter.cancel()
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await client  # re-raises a login or connection failure
    finally:
        if bot is not None and not bot.is_closed():
            await bot.close()
        if web is not None:
            await web.stop()
        await services.stop(STOP_GRACE_S)
        if status is not None:
            server, unwatch = status
            unwatch()
            await server.stop()


def main() -> None:
    try:
        settings = Settings.from_env()
        settings.require_discord_token()
    except SettingsError as exc:
        print(f"imagine-bot: {exc}", file=sys.stderr)
        sys.exit(2)
    setup_logging(settings.log_level, settings.log_json)

    try:
        asyncio.run(run(settings))
    except KeyboardInterrupt:
        pass
    except StorageError as exc:  # another bot, a corrupt or locked database: a sentence, no traceback
        log.error("imagine-bot cannot start: %s", exc)
        print(f"imagine-bot: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:  # a bad token, no route to Discord: one clear line, non-zero exit
        log.exception("imagine-bot stopped: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
