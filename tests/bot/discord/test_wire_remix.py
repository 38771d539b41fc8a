"""Remix, /settings and the PNG parameters over the wire: the unmodified `imagine-bot` process
against the fake Discord on loopback (see test_wire_bot.py), the spawned `tiny` engine, SQLite.

/settings answers privately with its buttons; the Remix toggle is a click on that message; V1 on
the grid then opens the Remix form (a modal callback), whose submission runs the edited prompt as
a variation replying to the grid. The uploaded PNG carries the remixed prompt in its text chunks.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.bot.discord.test_wire_bot import CLICK_S, JOB_S, TOKEN, answers, finished, new_replies
from tests.support.bot_process import connected_bot, until
from tests.support.fake_discord import (
    CALLBACK_MESSAGE,
    CALLBACK_MODAL,
    CALLBACK_UPDATE,
    EPHEMERAL,
    FakeDiscord,
    assert_unpatched_discord,
    button_id,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(540)]


async def test_remix_through_settings_and_the_modal_over_the_wire(tmp_path, data_dir):
    assert_unpatched_discord()
    async with (
        FakeDiscord(token=TOKEN) as fake,
        connected_bot(fake, TOKEN, data_dir, tmp_path / "bot.log", identifies=1) as bot,
    ):
        interaction = await fake.slash_command("imagine", {"prompt": "a red lighthouse --seed 42 --q .25"})
        grid = await finished(fake, bot, interaction, "the grid")

        settings = await fake.slash_command("settings")
        [answer] = await answers(fake, bot, settings, "the /settings message")
        assert answer.type == CALLBACK_MESSAGE and answer.data["flags"] & EPHEMERAL
        assert "Remix: off" in answer.data["content"]
        panel = fake.original_message(settings)
        toggle = await fake.click(int(panel["id"]), button_id(panel, "Remix mode"))
        [update] = await answers(fake, bot, toggle, "the Remix toggle")
        assert update.type == CALLBACK_UPDATE and "Remix: on" in update.data["content"]

        before = set(fake.messages)
        click = await fake.click(int(grid["id"]), button_id(grid, "V1"))
        [shown] = await answers(fake, bot, click, "the Remix form")
        assert shown.type == CALLBACK_MODAL and shown.data["title"].startswith("Remix")
        await fake.submit_modal(shown.data["custom_id"], {"prompt": "a blue lighthouse --seed 7 --q .25"})
        [reply] = await until(
            fake,
            bot,
            lambda: new_replies(fake, before),
            timeout=CLICK_S + JOB_S,
            what="the remixed variation replying to the grid",
        )
        assert reply["message_reference"]["message_id"] == grid["id"]
        assert "a blue lighthouse" in reply["content"]
        [png] = fake.attachment_bytes(reply)
        with Image.open(io.BytesIO(png)) as picture:
            text = dict(picture.text)
        # The upload is the grid of the variation, with what made it in its chunks.
        assert text["prompt"] == "a blue lighthouse --quality 0.25 --seed 7"
        assert text["parameters"].startswith("a blue lighthouse\nSeed: 7,")
        assert fake.unhandled == []
