"""The unmodified `imagine-bot` (`python -m bot`) as a child process against a `FakeDiscord`.

`bot_process(...)` starts it in its own process group (so its engine child dies with it) and
SIGKILLs the whole group when the block ends, whatever happened: a check that the group has
gone by itself must therefore stay inside the block. `until_connected` waits for the login,
the command sync and the IDENTIFY (`connected_bot`: both in one); `explained` adds the bot's
log to a failed wait, and `until` is `FakeDiscord.wait_for` explained so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.support.fake_discord import FakeDiscord, FakeDiscordTimeout

STARTUP_S = 180.0  # the bot's start: imports, migrations, the engine process loading `tiny`


class BotProcess:
    """One `python -m bot` run, in its own process group so its engine child dies with it."""

    def __init__(self, fake: FakeDiscord, token: str, data_dir: Path, log_path: Path) -> None:
        env = {
            **os.environ,
            "DISCORD_TOKEN": token,
            "IMAGINE_MODEL": "tiny",
            "IMAGINE_DEVICE": "cpu",
            "IMAGINE_DATA_DIR": str(data_dir),
            "IMAGINE_DISCORD_API_BASE": fake.api_base,
            "IMAGINE_DISCORD_GATEWAY_URL": fake.gateway_url,
            "IMAGINE_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("IMAGINE_DATABASE_URL", None)
        env.pop("IMAGINE_ENGINE", None)  # the default: the spawned local engine process
        self.log_path = log_path
        self._log = log_path.open("ab")
        # cwd is the data dir's parent: no stray .env from the checkout is read.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=data_dir.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the bot and everything it started; no shutdown code runs."""
        end_process_group(self.process, signal.SIGKILL)
        self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def end_process_group(process: subprocess.Popen[bytes], first: signal.Signals) -> None:
    """End a process started with `start_new_session=True` and everything it started: `first`
    (SIGTERM lets it shut down, SIGKILL does not) to its group, then, after it exited or 30 s
    went by, SIGKILL to what is left of the group (a child may outlive its leader for a moment)."""
    if process.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, first)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=30)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


@contextmanager
def bot_process(fake: FakeDiscord, token: str, data_dir: Path, log_path: Path) -> Iterator[BotProcess]:
    """The bot for the length of the block; its process group is SIGKILLed when the block ends."""
    bot = BotProcess(fake, token, data_dir, log_path)
    try:
        yield bot
    finally:
        bot.kill()


@asynccontextmanager
async def connected_bot(
    fake: FakeDiscord, token: str, data_dir: Path, log_path: Path, identifies: int
) -> AsyncIterator[BotProcess]:
    """`bot_process` once `until_connected` (`identifies`: how many IDENTIFYs in all, this one too)."""
    with bot_process(fake, token, data_dir, log_path) as bot:
        await until_connected(fake, bot, identifies)
        yield bot


@asynccontextmanager
async def explained(bot: BotProcess) -> AsyncIterator[None]:
    """Add the bot's log (and whether it died) to a failed wait."""
    try:
        yield
    except FakeDiscordTimeout as exc:
        code = bot.process.poll()
        state = "still running" if code is None else f"exited with {code}"
        raise FakeDiscordTimeout(f"{exc}\nthe bot is {state}; its log ends:\n{bot.log_tail()}") from None


async def until(
    fake: FakeDiscord, bot: BotProcess, ready: Callable[[], Any], *, timeout: float, what: str
) -> Any:
    """`fake.wait_for(ready, ...)`, with the bot's log added to a timeout (see `explained`)."""
    async with explained(bot):
        return await fake.wait_for(ready, timeout=timeout, what=what)


def commands(fake: FakeDiscord) -> list[dict[str, Any]]:
    """The commands the bot synced, global and per guild."""
    return fake.global_commands + [c for synced in fake.guild_commands.values() for c in synced]


async def until_connected(
    fake: FakeDiscord, bot: BotProcess, identifies: int, timeout: float = STARTUP_S
) -> None:
    """Until the bot logged in, synced its commands and identified `identifies` times in all."""

    def connected() -> bool:
        if bot.process.poll() is not None:
            raise AssertionError(f"imagine-bot exited with {bot.process.returncode}:\n{bot.log_tail()}")
        return fake.identifies >= identifies and bool(fake.sessions) and bool(commands(fake))

    async with explained(bot):
        await fake.wait_for(connected, timeout=timeout, what="the bot to log in, sync commands and identify")
