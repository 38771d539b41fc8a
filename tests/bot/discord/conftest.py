"""SimCord harness for the Discord bot: real Store (SQLite + Alembic), real dispatcher and
JobService, the real bot on an in-memory Discord.

The engine is the stand-in of tests/support (`StandInEngine(textured=True)`): it draws
seed-coloured pictures of the requested size instantly and can be held at a gate, which the
queue, progress, cancel and 15-minute tests need. `test_discord_tiny.py` runs the same bot
against the real `tiny` engine.
"""

from __future__ import annotations

import asyncio
import functools
import io
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import pytest_asyncio
from PIL import Image
from simcord.results import to_discord_message

from bot.core.fetch import fetch_image
from bot.core.services import Services
from bot.discord.app import ImagineBot, create_bot
from bot.settings import Settings
from tests.support.stand_in_engine import StandInEngine

FINAL = {"done", "failed", "cancelled", "blocked"}
SETTLE = 120.0  # seconds SimCord waits for the bot; a real engine job runs inside a click


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """The bot's data folder, empty (a bot process runs in its parent, so no stray .env is read)."""
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, model="stand-in", device="cpu", engine="inprocess")


@pytest.fixture
def engine() -> StandInEngine:
    return StandInEngine(textured=True)


@pytest.fixture
def held(engine: StandInEngine) -> StandInEngine:
    """The engine, with jobs waiting at its gate until the test sets it."""
    engine.gate = asyncio.Event()
    return engine


@pytest_asyncio.fixture
async def services(settings: Settings, engine) -> AsyncIterator[Services]:
    started = await Services.start(settings, engine=engine)
    try:
        yield started
    finally:
        await started.stop(grace_s=1.0)


@pytest.fixture
def allowed_hosts() -> set[tuple[str, int]]:
    """(ip, port) pairs the image fetcher may reach; a test's loopback image server adds itself."""
    return set()


def make_bot(services: Services, allowed_hosts: set[tuple[str, int]], **kwargs) -> ImagineBot:
    fetcher = functools.partial(fetch_image, allow_hosts=allowed_hosts, timeout=5.0)
    return create_bot(
        services, fetch_image=fetcher, progress_interval=kwargs.pop("progress_interval", 0.0), **kwargs
    )


@pytest_asyncio.fixture
async def simcord_bot(services: Services, allowed_hosts) -> ImagineBot:
    return make_bot(services, allowed_hosts)


@pytest.fixture
def world(simcord_env, engine):
    """A guild with a channel, two members (alice, bob) and a moderator."""

    engine.env = simcord_env
    guild = simcord_env.create_guild()
    channel = guild.create_text_channel("art")
    alice = guild.add_member(simcord_env.create_user("alice"))
    bob = guild.add_member(simcord_env.create_user("bob"))
    mods = guild.create_role("Mods", permissions=discord.Permissions(manage_messages=True))
    mod = guild.add_member(simcord_env.create_user("mod"), roles=[mods])
    return World(simcord_env, guild, channel, alice, bob, mod)


class World:
    def __init__(self, env, guild, channel, alice, bob, mod) -> None:
        self.env, self.guild, self.channel = env, guild, channel
        self.alice, self.bob, self.mod = alice, bob, mod

    @property
    def bot(self) -> ImagineBot:
        return self.env.bot

    @property
    def services(self) -> Services:
        return self.env.bot.services

    async def settled(self, job_id: str, status: str = "done", timeout: float = 60.0) -> None:
        """Wait until the job reached `status` and the bot has shown it, then let SimCord settle."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (shown := self.bot.messenger.rendered_status(job_id)) != status:
            if loop.time() > deadline or shown in FINAL - {status}:
                job = await self.services.store.get_job(job_id)
                shown = self.bot.messenger.rendered_status(job_id)
                raise AssertionError(f"job {job_id} is {job and job.status}, shown as {shown}")
            await asyncio.sleep(0.02)
        await self.env.settle()

    async def quiet(self) -> None:
        """Until no job waits or runs and the bot has handled every update (for 'nothing
        happened' checks, where there is no rendered status to wait for)."""
        await self.services.dispatcher.wait_idle()
        await self.services.dispatcher.listeners_idle()  # the listener feed runs outside SimCord's view
        await self.env.settle()

    def message(self, message_id: int):
        """The current state of a message in the main channel, as a discord.Message."""
        return self.message_in(self.channel, message_id)

    def message_in(self, channel, message_id: int):

        return to_discord_message(self.env, self.env.backend.get_message(channel.id, message_id))

    async def job_of(self, message_id: int):
        return await self.services.store.find_job_by_message(message_id)


def private_answer(result) -> str:
    """What only the member saw: the ephemeral response, or the last ephemeral follow-up (sent
    after a deferral)."""
    if result.response is not None and result.ephemeral:
        return result.response.content
    private = [message for message in result.followups if message.ephemeral]
    assert private, f"no private answer in {result!r}"
    return private[-1].content


def private_reply(result) -> str:
    """`private_answer` to a command: the ephemeral response, or the ephemeral follow-up sent
    after a public deferral (whose placeholder the bot removes)."""
    answer = private_answer(result)
    if result.response is not None and not result.ephemeral:
        raise AssertionError(f"a public message remained: {result.response.content!r}")
    return answer


def callbacks(env) -> list[int]:
    """The interaction response types the bot sent, in order (5 = deferred, 4 = message...)."""
    return [entry.json["type"] for entry in env.http_requests if entry.path.endswith("/callback")]


def labels(message) -> list[list[str]]:
    """The button labels of a message, row by row."""
    return [[child.label for child in row.children] for row in message.components]


def result_reply(world, result):
    """The channel's last message, which must be the job's result posted as a reply to `result`
    (what the bot does when it can no longer edit the original response)."""
    reply = world.channel.last_message
    assert reply.id != result.response.id
    assert reply.reference is not None and reply.reference.message_id == result.response.id
    assert len(reply.attachments) == 1 and labels(reply)[0][0] == "U1"
    return reply


async def attachment_image(attachment) -> Image.Image:
    data = await attachment.read()
    return Image.open(io.BytesIO(data))


def pytest_collection_modifyitems(items):
    for item in items:
        if "simcord_env" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("simcord"):
            item.add_marker(pytest.mark.simcord(settle_timeout=SETTLE))
