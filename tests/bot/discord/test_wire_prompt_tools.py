"""/shorten, /blend and /describe over the wire: the unmodified `imagine-bot` process against
the fake Discord on loopback (see test_wire_bot.py), its spawned engine on `tiny`.

First life: /shorten answers with its ranking and numbered buttons, /blend of two attachments
ends as a grid with the usual buttons, /describe with no captioner configured and `--sref` with
no IP-Adapter are refused privately. The bot is SIGKILLed and started again with a tiny random
captioner configured; in its second life a click on the old /shorten answer's button 2 imagines
that prompt as a new job derived from the answer, and /describe answers with four buttons.
"""

from __future__ import annotations

import asyncio
import io
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from storage.store import Store
from tests.bot.discord.test_wire_bot import GRID_LABELS, JOB_S, TOKEN, _result, finished
from tests.support.bot_process import connected_bot, explained, until
from tests.support.fake_discord import (
    CALLBACK_DEFERRED_UPDATE,
    FakeDiscord,
    assert_unpatched_discord,
    button_id,
    button_labels,
)
from tests.support.tiny_captioner import build_tiny_captioner

pytestmark = [pytest.mark.slow, pytest.mark.timeout(540)]


def png(colour: tuple[int, int, int], size: tuple[int, int]) -> tuple[str, bytes, str]:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return (f"{colour[0]}.png", buffer.getvalue(), "image/png")


def _answered(message: dict[str, Any] | None) -> dict[str, Any] | None:
    return message if message is not None and message.get("components") else None


async def test_shorten_blend_describe_and_a_click_after_a_sigkill(
    tmp_path: Path, data_dir: Path, monkeypatch
) -> None:
    assert_unpatched_discord()
    async with FakeDiscord(token=TOKEN) as fake:
        async with connected_bot(fake, TOKEN, data_dir, tmp_path / "bot-1.log", identifies=1) as bot:
            shorten = await fake.slash_command(
                "shorten", {"prompt": "a red lighthouse on a small hill at dusk --q .25"}
            )
            answer = await finished(fake, bot, shorten, "the /shorten answer", done=_answered)
            assert "Shorter prompts:" in answer["content"]
            assert button_labels(answer) == ["1", "2", "3", "4", "5"]

            blend = await fake.slash_command(
                "blend",
                {"dimensions": "landscape", "prompt": "--q .25"},
                attachments={"image1": png((220, 30, 30), (96, 64)), "image2": png((30, 30, 220), (64, 96))},
            )
            grid = await finished(fake, bot, blend, "the blended grid")
            assert button_labels(grid) == GRID_LABELS

            describe = await fake.slash_command(
                "describe", attachments={"image": png((30, 200, 30), (64, 64))}
            )
            async with explained(bot):
                refusal = await fake.private_reply(
                    describe, timeout=60, what="the refusal of /describe without a captioner"
                )
            assert "IMAGINE_CAPTIONER" in refusal["content"]

            sref = await fake.slash_command("imagine", {"prompt": "a cat --sref https://example.com/s.png"})
            async with explained(bot):
                refused = await fake.private_reply(sref, timeout=30, what="the refusal of --sref")
            assert "IMAGINE_IP_ADAPTER" in refused["content"]
            assert fake.unhandled == []
            bot.kill()

        # The second life has a captioner (the bot process reads its settings from the environment).
        monkeypatch.setenv("IMAGINE_CAPTIONER", str(build_tiny_captioner(tmp_path / "captioner")))

        await fake.wait_for(lambda: not fake.sessions, timeout=30, what="the killed bot's connection to drop")
        async with connected_bot(fake, TOKEN, data_dir, tmp_path / "bot-2.log", identifies=2) as bot:
            click = await fake.click(int(answer["id"]), button_id(answer, "2"))
            [made] = await until(
                fake,
                bot,
                lambda: [m for m in fake.messages_for(click) if _result(m)],
                timeout=JOB_S,
                what="the grid of the clicked prompt",
            )
            assert [c.type for c in fake.callbacks_for(click)] == [CALLBACK_DEFERRED_UPDATE]
            assert button_labels(made) == GRID_LABELS

            store = await Store.open(None, data_dir, migrate=False)
            try:
                answer_job = await store.find_job_by_message(int(answer["id"]))
                deadline = time.monotonic() + 60
                while (new_job := await store.find_job_by_message(int(made["id"]))) is None:
                    assert time.monotonic() < deadline, "the new job's message id never reached the store"
                    await asyncio.sleep(0.1)
            finally:
                await store.close()
            assert answer_job is not None and answer_job.kind == "shorten"
            assert new_job is not None and new_job.parent_id == answer_job.id
            assert new_job.prompt == answer_job.params["options"][1]

            described = await fake.slash_command(
                "describe", attachments={"image": png((30, 200, 30), (64, 64))}
            )
            prompts = await finished(fake, bot, described, "the /describe answer", done=_answered)
            assert button_labels(prompts) == ["1", "2", "3", "4"]
            assert "Prompts for this image:" in prompts["content"] and fake.unhandled == []
