"""`imagine-bot`: pointing discord.py at another Discord, recovery at startup, and a clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.__main__ import point_at_discord, run
from bot.settings import Settings
from storage.store import Store
from tests.support.bot_process import bot_process, until_connected
from tests.support.fake_discord import FakeDiscord, assert_unpatched_discord
from tests.support.stand_in_engine import StandInEngine

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


@pytest.mark.timeout(120)
async def test_a_job_left_queued_by_the_last_run_is_posted_as_a_reply_after_the_start(
    tmp_path: Path, monkeypatch
):
    """The bot's listener exists before recovery, so a recovered job that finishes before Discord
    is even connected still has its result posted, as a reply to the job's message."""
    assert_unpatched_discord()
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    data_dir = tmp_path / "data"
    async with FakeDiscord(token=TOKEN) as fake:
        store = await Store.open(None, data_dir)
        try:
            job = await store.create_job(
                kind="imagine",
                source="discord",
                user_id=int(fake.member["id"]),
                user_name="member",
                guild_id=fake.guild_id,
                channel_id=fake.channel_id,
                raw_prompt="a red kite",
                prompt="a red kite",
                width=64,
                height=64,
            )
            grid_message_id = fake.snowflake()
            await store.add_message(job.id, grid_message_id)
            console_job = await store.create_job(
                kind="imagine", source="console", user_id=1, user_name="operator", prompt="a console job"
            )
        finally:
            await store.close()

        settings = Settings(
            data_dir=data_dir,
            model="stand-in",
            device="cpu",
            discord_token=TOKEN,
            discord_api_base=fake.api_base,
            discord_gateway_url=fake.gateway_url,
        )
        engine = StandInEngine()
        stopping = asyncio.Event()
        bot = asyncio.create_task(run(settings, engine=engine, stopping=stopping))
        try:

            def reply() -> dict | None:
                for message in fake.messages.values():
                    reference = message.get("message_reference") or {}
                    if reference.get("message_id") == str(grid_message_id) and message["attachments"]:
                        return message
                return None

            posted = await fake.wait_for(
                lambda: bot.done() or reply(), timeout=60, what="the recovered job's result"
            )
            assert not bot.done(), bot.exception()
        finally:
            stopping.set()
            await asyncio.wait_for(bot, 60)
    assert "a red kite" in posted["content"] and posted["components"]
    assert engine.seen == [job.id]  # the console's pending job is left to the console
    store = await Store.open(None, data_dir)
    try:
        done = await store.get_job(job.id)
        assert done.status == "done"
        assert (fake.channel_id, int(posted["id"])) in await store.job_messages(job.id)
        assert (await store.get_job(console_job.id)).status == "queued"
    finally:
        await store.close()


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_sigterm_lets_the_running_job_finish_and_post_then_exits_cleanly(
    tmp_path: Path, data_dir: Path
):
    log_path = tmp_path / "bot.log"
    async with FakeDiscord(token=TOKEN) as fake:
        with bot_process(fake, TOKEN, data_dir, log_path) as bot:
            process = bot.process
            await until_connected(fake, bot, identifies=1, timeout=240)
            assert process.poll() is None, log_path.read_text()
            # A full-budget job (--q 2): long enough to be seen running before SIGTERM.
            interaction = await fake.slash_command("imagine", {"prompt": "a kite --q 2"})
            await fake.wait_for(lambda: fake.callbacks_for(interaction), timeout=30, what="the deferral")

            await _until_running(data_dir)
            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, 120)
            text = log_path.read_text(errors="replace")
            assert code == 0, text
            assert "signal received: shutting down" in text
            # Inside the block: leaving it SIGKILLs the group, and this check would pass trivially.
            assert await _group_gone(process.pid), _group(process.pid)  # the engine went with it

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
        for _ in range(int(timeout / 0.05)):
            jobs = await store.pending_jobs()
            if any(job.status == "running" for job in jobs):
                return
            await asyncio.sleep(0.05)
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
