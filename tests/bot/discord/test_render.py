"""Pieces of `render` that the SimCord tests cannot see from the outside."""

from __future__ import annotations

import io
import threading

from PIL import Image

from bot.core.dispatcher import JobUpdate
from bot.discord import render
from tests.support.stand_in_engine import textured as solid


async def test_previews_are_encoded_off_the_event_loop(monkeypatch):
    threads = []
    encode = render._png

    def recording_png(image):
        threads.append(threading.current_thread())
        return encode(image)

    monkeypatch.setattr(render, "_png", recording_png)
    update = JobUpdate("job", "running", step=2, total=4, preview=solid(16, 8, 3))

    png = await render.encode_preview(update)

    assert threads and threads[0] is not threading.main_thread()
    assert Image.open(io.BytesIO(png)).size == (16, 8)
    assert await render.encode_preview(JobUpdate("job", "running", step=3, total=4)) is None
