"""`imagine-bot` as a process: pointing discord.py at another Discord, and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.__main__ import point_at_discord
from storage.store import Store
from tests.support.fake_discord import FakeDiscord

TOKEN = "main-test-token"


def test_point_at_discord_moves_rest_and_gateway(monkeypatch):
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)

    point_at_discord("http://127.0.0.1:5000/api/v10/", "ws://127.0.0.1:5000/gateway")

    assert Route("GET", "/users/@me").url == "http://127.0.0.1:5000/api/v10/users/@me"
    assert yarl.URL("ws://127.0.0.1:5000/gateway") == DiscordWebSocket.DEFAULT_GATEWAY


def test_nothing_changes_without_the_settings(monkeypatch):
    monkeypatch.setattr(Route, "BASE", "https://discord.com/api/v10")
    point_at_discord(None, None)
    assert Route.BASE == "https://discord.com/api/v10"
    assert yarl.URL("wss://gateway.discord.gg/") == DiscordWebSocket.DEFAULT_GATEWAY


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_sigterm_lets_the_running_job_finish_and_post_then_exits_cleanly(tmp_path: Path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log_path = tmp_path / "bot.log"
    async with FakeDiscord(token=TOKEN) as fake:
        env = {
            **os.environ,
            "DISCORD_TOKEN": TOKEN,
            "IMAGINE_MODEL": "tiny",
            "IMAGINE_DATA_DIR": str(data_dir),
            "IMAGINE_DISCORD_API_BASE": fake.api_base,
            "IMAGINE_DISCORD_GATEWAY_URL": fake.gateway_url,
            "PYTHONUNBUFFERED": "1",
        }
        env.pop("IMAGINE_DATABASE_URL", None)
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot"],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                await fake.wait_for(
                    lambda: process.poll() is not None or (fake.sessions and fake.global_commands),
                    timeout=240,
                    what="the bot to connect",
                )
                assert process.poll() is None, log_path.read_text()
                interaction = await fake.slash_command("imagine", {"prompt": "a kite --q .25"})
                await fake.wait_for(lambda: fake.callbacks_for(interaction), timeout=30, what="the deferral")

                await _until_running(data_dir)
                process.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(process.wait, 120)
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
    text = log_path.read_text(errors="replace")
    assert code == 0, text
    assert "signal received: shutting down" in text
    assert await _group_gone(process.pid), _group(process.pid)  # the engine process went with it

    store = await Store.open(None, data_dir)
    try:
        jobs = await store.pending_jobs()
        finished = await store.user_jobs(int(interaction["member"]["user"]["id"]))
    finally:
        await store.close()
    # The running job was given time to finish, and its result was posted before disconnecting.
    assert jobs == []
    assert [job.status for job in finished] == ["done"]
    message = fake.original_message(interaction)
    assert message is not None and message.get("attachments") and message.get("components"), message


async def _until_running(data_dir: Path, timeout: float = 120.0) -> None:
    """Until the bot's job has started (read from the bot's own database)."""
    store = await Store.open(None, data_dir)
    try:
        for _ in range(int(timeout / 0.2)):
            jobs = await store.pending_jobs()
            if any(job.status == "running" for job in jobs):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"the job did not start: {[job.status for job in jobs]}")
    finally:
        await store.close()


async def _group_gone(pgid: int, timeout: float = 20.0) -> bool:
    for _ in range(int(timeout / 0.1)):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        await asyncio.sleep(0.1)
    return False


def _group(pgid: int) -> str:
    out = subprocess.run(["ps", "-o", "pid,stat,args", "-g", str(pgid)], capture_output=True, text=True)
    return out.stdout
