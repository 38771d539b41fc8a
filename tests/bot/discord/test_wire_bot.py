"""The wire-level test: the unmodified `imagine-bot` process against a fake Discord on loopback.

Everything between the bot and "Discord" is real: discord.py's HTTP client and gateway
websocket talking to `tests/support/fake_discord/`, the bot's spawned engine process on the
`tiny` model, SQLite in a temporary data directory. The test plays Discord: it sends /imagine as a
gateway INTERACTION_CREATE, sees the deferral and the grid (a multipart PNG upload and the
buttons), then SIGKILLs the bot (and its engine, as `docker kill` would), starts it again on the
same data directory, and clicks U1 on the old grid, which must make a new job whose single image
is posted as a reply to the grid.

Every wait has a deadline and fails with what it waited for, the fake's last requests and the
tail of the bot's log; the bot processes are killed in `finally` whatever happens.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.prompt import dimensions_for
from engine.presets import PRESETS
from storage.store import Store
from tests.support.bot_process import (
    BotProcess,
    commands,
    connected_bot,
    explained,
    until,
)
from tests.support.fake_discord import (
    CALLBACK_DEFERRED_MESSAGE,
    CALLBACK_DEFERRED_UPDATE,
    CALLBACK_MESSAGE,
    EPHEMERAL,
    FakeDiscord,
    assert_unpatched_discord,
    button_id,
    button_labels,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(540)]

TOKEN = "wire-test-token"
JOB_S = 180.0  # one tiny 2x2 grid on two shared CPU cores, with room to spare
CLICK_S = 60.0
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message content
GRID_LABELS = ["U1", "U2", "U3", "U4", "🔄", "V1", "V2", "V3", "V4"]


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG", f"expected a PNG upload, got {image.format}"
        return image.size


def _result(message: dict[str, Any] | None) -> dict[str, Any] | None:
    """The message once it shows a finished job: an image that is not a preview, and its buttons."""
    if message is None or not message.get("attachments") or not message.get("components"):
        return None
    if any(a["filename"].startswith("preview") for a in message["attachments"]):
        return None
    return message


async def finished(
    fake: FakeDiscord, bot: BotProcess, interaction: dict[str, Any], what: str, done: Any = _result
) -> dict[str, Any]:
    """The interaction's own message once `done` finds it finished (a job's result by default)."""
    return await until(fake, bot, lambda: done(fake.original_message(interaction)), timeout=JOB_S, what=what)


async def answers(fake: FakeDiscord, bot: BotProcess, interaction: dict[str, Any], what: str) -> list[Any]:
    """The interaction's callbacks (its first answer), once there is one."""
    return await until(fake, bot, lambda: fake.callbacks_for(interaction), timeout=30, what=what)


def new_replies(fake: FakeDiscord, before: set[Any]) -> list[dict[str, Any]]:
    """The finished jobs' messages posted since `before` (the message ids then) that reply to one."""
    return [
        m
        for key, m in fake.messages.items()
        if key not in before and _result(m) and m.get("message_reference")
    ]


async def test_imagine_then_a_click_on_the_old_grid_after_a_sigkill(tmp_path: Path, data_dir: Path) -> None:
    assert_unpatched_discord()  # the fake's own timers run on this process's clock
    preset = PRESETS["tiny"]
    cell = dimensions_for((2, 1), preset.native_width, preset.native_height, preset.size_step)

    async with FakeDiscord(token=TOKEN) as fake:
        # --- first life: /imagine -------------------------------------------------------------
        async with connected_bot(fake, TOKEN, data_dir, tmp_path / "bot-1.log", identifies=1) as bot:
            assert "imagine" in [c["name"] for c in commands(fake)]
            # Operators need not enable privileged intents in the developer portal.
            assert fake.sessions[-1].intents & PRIVILEGED_INTENTS == 0
            # --q .25: two denoising steps instead of eight; the wire is under test, not the art.
            prompt = "a red lighthouse at dusk --ar 2:1 --seed 42 --q .25"
            # With an image prompt attached: the bot downloads it from the "CDN" like any attachment.
            reference = io.BytesIO()
            Image.new("RGB", (96, 48), (200, 40, 40)).save(reference, "PNG")
            interaction = await fake.slash_command(
                "imagine",
                {"prompt": prompt},
                attachments={"image": ("reference.png", reference.getvalue(), "image/png")},
            )
            attachment_id = int(interaction["data"]["resolved"]["attachments"].popitem()[0])

            await answers(fake, bot, interaction, "the answer to /imagine")
            assert [c.type for c in fake.callbacks_for(interaction)] == [CALLBACK_DEFERRED_MESSAGE]

            grid = await finished(
                fake, bot, interaction, "the /imagine response edited into the finished grid"
            )
            [png] = fake.attachment_bytes(grid)
            assert _png_size(png) == (2 * cell[0], 2 * cell[1])  # a 2x2 grid of --ar 2:1 cells
            assert button_labels(grid) == GRID_LABELS
            assert fake.downloads == [attachment_id]
            assert "a red lighthouse at dusk" in grid["content"]
            assert f"<@{fake.member['id']}>" in grid["content"]
            assert fake.unhandled == []

            # Refusals travel the same wire: private (ephemeral) answers that start nothing.
            bad = await fake.slash_command("imagine", {"prompt": "a cat --ar 9:1"})
            [callback] = await answers(fake, bot, bad, "the refusal of a bad --ar")
            assert callback.type == CALLBACK_MESSAGE and callback.data["flags"] & EPHEMERAL
            assert "--ar" in callback.data["content"]

            internal = await fake.slash_command(
                "imagine", {"prompt": "http://169.254.169.254/latest/cat.png a cat"}
            )
            async with explained(bot):
                refusal = await fake.private_reply(
                    internal, timeout=30, what="the refusal of an image link to an internal address"
                )
            assert "internal network address (169.254.169.254)" in refusal["content"]
            assert not _result(fake.original_message(internal))
            bot.kill()

        # --- second life: the old grid's U1 -----------------------------------------------------
        await fake.wait_for(
            lambda: not fake.sessions, timeout=30, what="the killed bot's gateway connection to drop"
        )
        async with connected_bot(fake, TOKEN, data_dir, tmp_path / "bot-2.log", identifies=2) as bot:
            before = set(fake.messages)
            click = await fake.click(int(grid["id"]), button_id(grid, "U1"))

            [reply] = await until(
                fake,
                bot,
                lambda: new_replies(fake, before),
                timeout=CLICK_S,
                what="a new job's message replying to the grid",
            )
            assert [c.type for c in fake.callbacks_for(click)] == [CALLBACK_DEFERRED_UPDATE]
            assert reply["message_reference"]["message_id"] == grid["id"]
            [single] = fake.attachment_bytes(reply)
            assert _png_size(single) == cell
            assert "U1" not in button_labels(reply)
            assert {"Vary (Subtle)", "Upscale (Subtle)", "Zoom Out 2x"} <= set(button_labels(reply))
            assert fake.unhandled == []

            # The store, the system of record, agrees: the reply shows a new job derived from the grid.
            # The bot records a message id just after Discord answers the send: wait for it.
            store = await Store.open(None, data_dir, migrate=False)
            try:
                grid_job = await store.find_job_by_message(int(grid["id"]))
                deadline = time.monotonic() + CLICK_S
                while (new_job := await store.find_job_by_message(int(reply["id"]))) is None:
                    assert time.monotonic() < deadline, "the reply's message id never reached the store"
                    await asyncio.sleep(0.1)
            finally:
                await store.close()
            assert grid_job is not None and new_job is not None
            assert new_job.id != grid_job.id
            assert new_job.parent_id == grid_job.id
            assert new_job.status == "done"
            assert new_job.id in reply["content"]


def test_the_bot_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DISCORD_TOKEN"}
    env["IMAGINE_DATA_DIR"] = str(tmp_path / "data")
    result = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DISCORD_TOKEN" in result.stderr
