"""`imagine-bot` with IMAGINE_WEB_PORT serves Imagine Web beside Discord, on the same services."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from discord.gateway import DiscordWebSocket
from discord.http import Route

from bot.__main__ import run
from bot.core.web_access import WebMember, issue_link
from bot.settings import Settings
from storage.store import Store
from tests.bot.web.conftest import free_port
from tests.support.fake_discord import FakeDiscord, assert_unpatched_discord
from tests.support.stand_in_engine import StandInEngine

TOKEN = "web-in-bot-token"


async def test_the_bot_serves_the_web_app_when_its_port_is_set(tmp_path: Path, monkeypatch) -> None:
    assert_unpatched_discord()
    monkeypatch.setattr(Route, "BASE", Route.BASE)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", DiscordWebSocket.DEFAULT_GATEWAY)
    port = free_port()
    async with FakeDiscord(token=TOKEN) as fake:
        settings = Settings(
            data_dir=tmp_path / "data",
            model="stand-in",
            device="cpu",
            discord_token=TOKEN,
            discord_api_base=fake.api_base,
            discord_gateway_url=fake.gateway_url,
            web_port=port,
        )
        stopping = asyncio.Event()
        bot = asyncio.create_task(run(settings, engine=StandInEngine(), stopping=stopping))
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:  # an IP host

                async def healthy() -> bool:
                    try:
                        async with http.get(base + "/healthz") as response:
                            return response.status == 200
                    except aiohttp.ClientError:
                        return False

                for _ in range(200):
                    assert not bot.done(), bot.exception()
                    if await healthy():
                        break
                    await asyncio.sleep(0.1)
                store = await Store.open(None, settings.data_dir)
                try:
                    link = await issue_link(store, base, WebMember(7, "member", fake.guild_id))
                finally:
                    await store.close()
                assert link.startswith(base + "/signin/")  # links name the bot's own web address
                async with http.post(link, allow_redirects=False) as response:
                    assert response.status == 303
                async with http.get(base + "/") as response:
                    assert response.status == 200 and "Your images" in await response.text()
        finally:
            stopping.set()
            await asyncio.wait_for(bot, 60)
