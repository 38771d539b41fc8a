"""Fast and Relax in the core: budgets, spending, the Relax lane, Turbo.

Real store and parser, the stand-in engine (the `env` fixture of tests/bot/conftest.py), and the fair queue
itself for the order of the lanes.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest

from bot.core import fast
from bot.core.blend import BlendService
from bot.core.fair_queue import FairQueue, QueueEntry
from bot.core.jobs import Action
from bot.core.limits import Limits
from bot.prompt import PromptError
from storage.errors import InvalidInputError
from storage.models import GuildSettings
from tests.support.job_service import ALICE, count_jobs, done, grid
from tests.support.stand_in_engine import solid

GUILD = ALICE.guild_id


def entry(job_id: str, user: int, relax: bool = False) -> QueueEntry:
    return QueueEntry(job_id, user, Limits(max_running_per_user=5), relax=relax)


def test_relax_jobs_wait_behind_fast_ones_and_share_their_lane_round_robin():
    queue = FairQueue()
    for item in [
        entry("r1", 1, True),
        entry("r2", 1, True),
        entry("r3", 2, True),
        entry("f1", 3),
        entry("f2", 3),
    ]:
        queue.add(item)
    assert [e.job_id for e in queue.order()] == ["f1", "f2", "r1", "r3", "r2"]
    started = [queue.take_next(lambda user: 0).job_id for _ in range(5)]
    assert started == ["f1", "f2", "r1", "r3", "r2"] and len(queue) == 0
    assert queue.take_next(lambda user: 0) is None


async def test_without_a_budget_fast_is_unlimited_and_the_time_is_still_counted(env):
    store, _, dispatcher, service = env
    [job] = await done(dispatcher, store, await service.imagine(ALICE, "a harbour"))
    assert job.params["speed"] == "fast" and "speed_notice" not in job.params
    now = await fast.balance(store, ALICE.user_id, GUILD)
    assert now.budget_s is None and now.left_s is None
    assert now.used_s == pytest.approx(job.timings["engine_s"], abs=1e-3)  # the timings keep 4 decimals


async def test_an_exhausted_budget_runs_the_job_in_relax_with_a_notice_and_a_grant_brings_fast_back(env):
    store, _engine, dispatcher, service = env
    await store.update_guild_settings(GUILD, fast_seconds=60, fast_period_hours=24)
    now = await fast.balance(store, ALICE.user_id, GUILD)
    assert now.left_s == 60 and (now.resets_at - now.period_start).total_seconds() == 24 * 3600
    await store.add_fast_usage(ALICE.user_id, GUILD, now.period_start, used_s=61)

    [job] = await service.imagine(ALICE, "a harbour --fast")
    assert job.params["speed"] == "relax"
    notice = job.params["speed_notice"]
    assert "Fast time on this server is used up" in notice and "Relax" in notice
    assert f"<t:{int(now.resets_at.timestamp())}:R>" in notice
    [job] = await done(dispatcher, store, [job])
    assert job.status == "done"
    assert (await fast.balance(store, ALICE.user_id, GUILD)).used_s == 61  # Relax costs nothing

    await store.add_fast_usage(ALICE.user_id, GUILD, now.period_start, granted_s=30)  # a moderator's grant
    [again] = await service.imagine(ALICE, "a harbour")
    assert again.params["speed"] == "fast" and "speed_notice" not in again.params


async def test_a_role_budget_beats_the_servers_and_the_largest_role_wins(env):
    store, _, _, service = env
    await store.update_guild_settings(GUILD, fast_seconds=0, fast_role_seconds={"7": 100, "8": 300})
    plain = await fast.balance(store, ALICE.user_id, GUILD)
    assert plain.exhausted
    member = dataclasses.replace(ALICE, role_ids=(7, 8))
    assert (await fast.balance(store, ALICE.user_id, GUILD, member.role_ids)).left_s == 300
    [job] = await service.imagine(member, "a harbour")
    assert job.params["speed"] == "fast"


async def test_relax_by_prompt_or_setting_and_derived_jobs_take_the_clickers_mode(env):
    store, _engine, dispatcher, service = env
    parent = await grid(env, "a harbour --relax --seed 3")
    assert parent.params["speed"] == "relax" and parent.prompt.endswith("--relax")
    await store.update_member_settings(ALICE.user_id, GUILD, speed="relax")
    [plain] = await service.imagine(ALICE, "a harbour")
    assert plain.params["speed"] == "relax"
    varied = await service.derive(ALICE, parent.id, Action.VARY, index=0)
    assert varied.params["speed"] == "relax"
    [single] = [await service.derive(ALICE, parent.id, Action.UPSCALE, index=0)]
    assert "speed" not in single.params  # a separated cell uses no engine time
    await done(dispatcher, store, [plain, varied])


async def test_turbo_needs_the_operator_and_then_halves_the_steps(env):
    store, engine, dispatcher, service = env
    before = await count_jobs(store)
    with pytest.raises(PromptError, match="`--turbo` is off on this bot"):
        await service.imagine(ALICE, "a harbour --turbo")
    assert await count_jobs(store) == before
    service.turbo_allowed = True
    [job] = await done(dispatcher, store, await service.imagine(ALICE, "a harbour --turbo --quality 2"))
    assert job.params["speed"] == "turbo" and engine.requests[-1].quality == 1.0
    [_low] = await done(dispatcher, store, await service.imagine(ALICE, "a harbour --turbo --quality .25"))
    assert engine.requests[-1].quality == 0.25  # the floor


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"fast_seconds": -5}, "the Fast budget must be 0 or more seconds"),
        ({"fast_period_hours": 0}, "the Fast period must be 1 to 8760 hours"),
        ({"fast_role_seconds": {"7": -1}}, "fast_role_seconds maps role ids to 0 or more seconds"),
    ],
)
async def test_a_budget_below_zero_is_refused_and_changes_nothing(env, fields, message):
    store = env[0]
    with pytest.raises(InvalidInputError, match=message):
        await store.update_guild_settings(GUILD, **fields)
    settings = await store.guild_settings(GUILD)
    assert (settings.fast_seconds, settings.fast_period_hours, settings.fast_role_seconds) == (
        None,
        None,
        None,
    )


def test_periods_are_fixed_windows_so_everyone_resets_together():
    settings = GuildSettings(guild_id=1, fast_period_hours=24)
    start, end = fast.period_bounds(settings, datetime(2026, 12, 6, 13, 30, tzinfo=UTC))
    assert (start, end) == (datetime(2026, 12, 6, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))
    assert fast.describe_time(3725) == "1h 2m" and fast.describe_time(250) == "4m 10s"


async def test_concurrent_charges_all_count(env):
    store = env[0]
    start = (await fast.balance(store, ALICE.user_id, GUILD)).period_start
    await asyncio.gather(*(store.add_fast_usage(ALICE.user_id, GUILD, start, used_s=1.5) for _ in range(8)))
    assert (await fast.balance(store, ALICE.user_id, GUILD)).used_s == 12.0


async def test_a_blend_runs_in_the_members_mode_and_falls_back_to_relax_too(env):
    store, _, dispatcher, service = env
    relaxed = await BlendService(service).blend(
        ALICE, [solid(40, 30), solid(30, 40, 200)], "square", "--relax"
    )
    assert relaxed.params["speed"] == "relax"
    await store.update_guild_settings(GUILD, fast_seconds=0)
    exhausted = await BlendService(service).blend(ALICE, [solid(40, 30), solid(30, 40, 200)])
    assert exhausted.params["speed"] == "relax" and "used up" in exhausted.params["speed_notice"]
    await asyncio.wait_for(dispatcher.wait_idle(), 10)
