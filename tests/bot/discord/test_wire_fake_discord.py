"""The fake Discord speaks discord.py's protocol: a bare `discord.Client` logs in against it.

These tests prove the test double before the wire-level bot test relies on it: login and
application info over HTTP, IDENTIFY/READY/GUILD_CREATE and heartbeats over a real websocket,
command sync, a slash command answered with a deferral and a multipart follow-up, and a button
click (a `DynamicItem`, as the bot uses) answered with a reply, also after the client restarted.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import discord
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from PIL import Image

from tests.support.fake_discord import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    CALLBACK_MODAL,
    FakeDiscord,
    FakeDiscordTimeout,
    assert_unpatched_discord,
    button_id,
    button_labels,
)

WAIT = 20.0  # seconds; every wait below has this deadline and fails with what it waited for


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (30, 60, 90)).save(buffer, "PNG")
    return buffer.getvalue()


class Upscale(discord.ui.DynamicItem[discord.ui.Button], template=r"probe:up:(?P<index>[1-4])"):
    """A button that outlives its client, like the bot's: the state is in the custom_id."""

    def __init__(self, index: int) -> None:
        super().__init__(discord.ui.Button(label=f"U{index}", custom_id=f"probe:up:{index}"))
        self.index = index

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ):
        return cls(int(match["index"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        assert interaction.message is not None
        await interaction.channel.send(  # type: ignore[union-attr]
            f"upscaled cell {self.index}",
            file=discord.File(io.BytesIO(_png(32, 32)), "single.png"),
            reference=interaction.message,
        )


class ZoomModal(discord.ui.Modal, title="Custom Zoom"):
    factor = discord.ui.TextInput(label="Zoom factor", custom_id="probe:factor")

    def __init__(self) -> None:
        super().__init__(custom_id="probe:zoom-modal", timeout=None)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"zooming out {self.factor.value}x", ephemeral=True)


class AskZoom(discord.ui.DynamicItem[discord.ui.Button], template=r"probe:zoom"):
    def __init__(self) -> None:
        super().__init__(discord.ui.Button(label="Custom Zoom", custom_id="probe:zoom"))

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ):
        return cls()

    async def callback(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(ZoomModal())


class Probe(discord.Client):
    """The smallest client that does what the bot does on the wire."""

    def __init__(self) -> None:
        # READY waits this long for GUILD_CREATEs; the fake sends its one guild at once.
        super().__init__(intents=discord.Intents.default(), guild_ready_timeout=0.2)
        self.tree = app_commands.CommandTree(self)
        self.ready = asyncio.Event()
        self.received_attachment: bytes | None = None

        @self.tree.command(name="imagine", description="Make a picture")
        @app_commands.describe(prompt="What to draw")
        async def imagine(
            interaction: discord.Interaction, prompt: str, image: discord.Attachment | None = None
        ) -> None:
            await interaction.response.defer(thinking=True)
            if image is not None:
                self.received_attachment = await image.read()
            view = discord.ui.View(timeout=None)
            for index in range(1, 5):
                view.add_item(Upscale(index))
            view.add_item(AskZoom())
            await interaction.followup.send(
                f"**{prompt}** - <@{interaction.user.id}>",
                file=discord.File(io.BytesIO(_png(64, 32)), "grid.png"),
                view=view,
            )

    async def setup_hook(self) -> None:
        self.add_dynamic_items(Upscale, AskZoom)
        await self.tree.sync()

    async def on_ready(self) -> None:
        self.ready.set()


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    assert_unpatched_discord()
    async with FakeDiscord(token="probe-token") as server:
        monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
        monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
        yield server


@asynccontextmanager
async def running(token: str = "probe-token") -> AsyncIterator[Probe]:
    """A `Probe` logged in with `token`, ready (READY and the guild received) when yielded."""
    client = Probe()
    task = asyncio.create_task(client.start(token))
    try:
        try:
            await asyncio.wait_for(client.ready.wait(), timeout=WAIT)
        except TimeoutError:
            raise AssertionError("the client never became ready against the fake Discord") from None
        yield client
    finally:
        await client.close()
        await asyncio.wait_for(task, timeout=WAIT)


async def _grid(fake: FakeDiscord, interaction: dict) -> list[dict]:
    """The interaction's messages with an image, once there is one (the probe's grid)."""
    return await fake.wait_for(
        lambda: [m for m in fake.messages_for(interaction) if m["attachments"]],
        timeout=WAIT,
        what="the grid",
    )


async def test_a_client_logs_in_syncs_and_becomes_ready(fake: FakeDiscord) -> None:
    async with running() as client:
        assert client.user is not None and client.user.id == fake.application_id
        guild = client.get_guild(fake.guild_id)
        assert guild is not None and guild.get_channel(fake.channel_id) is not None
        assert fake.identifies == 1
        [command] = fake.global_commands
        assert command["name"] == "imagine"
        assert [(o["name"], o["type"], o.get("required", False)) for o in command["options"]] == [
            ("prompt", 3, True),
            ("image", 11, False),
        ]


async def test_a_wrong_token_is_refused(fake: FakeDiscord) -> None:
    client = Probe()
    with pytest.raises(discord.LoginFailure):
        await asyncio.wait_for(client.start("not-the-token"), timeout=WAIT)
    await client.close()
    assert fake.sessions == []


async def test_a_slash_command_is_deferred_then_answered_with_a_png_and_buttons(fake: FakeDiscord) -> None:
    async with running():
        interaction = await fake.slash_command("imagine", {"prompt": "a lighthouse"})

        await fake.wait_for(lambda: fake.callbacks_for(interaction), timeout=WAIT, what="the deferral")
        [callback] = fake.callbacks_for(interaction)
        assert callback.type == CALLBACK_DEFERRED_MESSAGE

        follow_up = await _grid(fake, interaction)
        message = follow_up[0]
        assert message["content"].startswith("**a lighthouse**")
        [png] = fake.attachment_bytes(message)
        assert Image.open(io.BytesIO(png)).size == (64, 32)
        assert button_labels(message) == ["U1", "U2", "U3", "U4", "Custom Zoom"]
        assert fake.unhandled == []


async def test_an_attachment_option_is_served_like_discord_s_cdn(fake: FakeDiscord) -> None:
    async with running() as client:
        upload = _png(20, 10)
        interaction = await fake.slash_command(
            "imagine", {"prompt": "like this"}, attachments={"image": ("ref.png", upload, "image/png")}
        )
        await fake.wait_for(lambda: fake.messages_for(interaction)[1:], timeout=WAIT, what="the follow-up")
        assert client.received_attachment == upload
        assert fake.downloads == [int(next(iter(interaction["data"]["resolved"]["attachments"])))]


async def test_a_click_on_a_button_is_answered_with_a_reply_even_after_a_restart(fake: FakeDiscord) -> None:
    async with running():
        interaction = await fake.slash_command("imagine", {"prompt": "a fox"})
        [grid] = await _grid(fake, interaction)

    async with running():  # a new client: nothing in memory from the first one
        assert fake.identifies == 2
        click = await fake.click(int(grid["id"]), button_id(grid, "U3"))
        [reply] = await fake.wait_for(
            lambda: [m for m in fake.messages.values() if m.get("message_reference")],
            timeout=WAIT,
            what="a reply to the grid",
        )
        assert [c.type for c in fake.callbacks_for(click)] == [CALLBACK_DEFERRED_UPDATE]
        assert reply["message_reference"]["message_id"] == grid["id"]
        assert reply["content"] == "upscaled cell 3"
        assert Image.open(io.BytesIO(fake.attachment_bytes(reply)[0])).size == (32, 32)


async def test_a_wait_that_never_ends_fails_with_what_it_waited_for(fake: FakeDiscord) -> None:
    with pytest.raises(FakeDiscordTimeout, match="waiting for the impossible"):
        await fake.wait_for(lambda: False, timeout=0.2, what="the impossible")


async def test_clicking_a_button_that_does_not_exist_is_a_test_error(fake: FakeDiscord) -> None:
    async with running():
        interaction = await fake.slash_command("imagine", {"prompt": "x"})
        [grid] = await _grid(fake, interaction)
        with pytest.raises(AssertionError, match="has no button 'nope'"):
            await fake.click(int(grid["id"]), "nope")


async def test_a_button_can_open_a_modal_and_its_submission_is_answered(fake: FakeDiscord) -> None:
    async with running():
        interaction = await fake.slash_command("imagine", {"prompt": "a tower"})
        [grid] = await _grid(fake, interaction)
        click = await fake.click(int(grid["id"]), button_id(grid, "Custom Zoom"))
        [opened] = await fake.wait_for(lambda: fake.callbacks_for(click), timeout=WAIT, what="the modal")
        assert opened.type == CALLBACK_MODAL
        assert opened.data["custom_id"] == "probe:zoom-modal"

        submitted = await fake.submit_modal("probe:zoom-modal", {"probe:factor": "1.5"})
        [answer] = await fake.wait_for(lambda: fake.callbacks_for(submitted), timeout=WAIT, what="the answer")
        assert answer.type == CALLBACK_MESSAGE
        assert answer.data["content"] == "zooming out 1.5x"
        assert answer.data["flags"] & 64  # ephemeral
