"""Progress edits are throttled per message (at most one every 3 s), results never are."""

from __future__ import annotations

import pytest

from tests.bot.discord.conftest import labels, make_bot
from tests.bot.discord.test_progress import original_edits


@pytest.fixture
async def simcord_bot(services, allowed_hosts):
    """This module's bot edits progress at most every 3 s, like production."""
    return make_bot(services, allowed_hosts, progress_interval=3.0)


async def test_progress_edits_are_throttled_and_show_a_preview(world, held):
    held.hold_step = 2  # two progress steps, then wait
    result = await world.alice.slash(world.channel, "imagine", prompt="a storm at sea")
    job = await world.job_of(result.response.id)
    edits_while_held = original_edits(world.env, result)

    await world.env.advance_time(3.5)  # the throttle lets the newest progress through
    shown = world.message(result.response.id)
    assert "Running: 50%" in shown.content
    assert [a.filename for a in shown.attachments] == ["preview.png"]

    held.gate.set()
    await world.settled(job.id)
    edits = original_edits(world.env, result)
    # "waiting", then nothing until 3 s had passed (the start and two steps were held back),
    # then the newest progress; the result itself is never held back
    assert len(edits_while_held) == 1 and "Waiting to start" in edits_while_held[0]
    assert len(edits) == 3 and "Running: 50%" in edits[1] and "Running" not in edits[-1]
    assert labels(world.message(result.response.id))[0] == ["U1", "U2", "U3", "U4", "🔄"]
