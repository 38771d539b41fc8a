"""`--lora` in the job service: checked against the installed styles, carried to the engine,
and a member's /settings style as a default. Stand-in engine (the `env` fixture of tests/bot/conftest.py)."""

from __future__ import annotations

import dataclasses

import pytest

from bot.core.jobs import Action
from bot.prompt import PromptError
from engine.api import LoraChoice
from tests.support.job_service import ALICE, count_jobs, done, grid


@pytest.fixture
def styled(env):
    service = env[3]
    service.info = dataclasses.replace(service.info, loras=("ink", "neon"))
    return env


async def test_a_style_and_its_weight_reach_the_engine_and_derived_jobs_keep_it(styled):
    store, engine, dispatcher, service = styled
    parent = await grid(styled, "a harbour --lora ink:0.6 --seed 2")
    assert parent.prompt == "a harbour --lora ink:0.6 --seed 2"
    assert engine.requests[-1].lora == LoraChoice("ink", 0.6)
    varied = await service.derive(ALICE, parent.id, Action.VARY, index=0)
    await done(dispatcher, store, [varied])
    assert engine.requests[-1].kind == "vary" and engine.requests[-1].lora == LoraChoice("ink", 0.6)
    remixed = await service.derive(
        ALICE, parent.id, Action.VARY, index=0, prompt_override="a harbour --lora neon"
    )
    await done(dispatcher, store, [remixed])
    assert engine.requests[-1].lora == LoraChoice("neon", 1.0)


async def test_an_unknown_style_is_refused_with_the_installed_names_and_nothing_is_made(styled, env):
    store, _, _, service = styled
    before = await count_jobs(store)
    with pytest.raises(
        PromptError, match=r"`--lora oil` is not a style installed here; installed: ink, neon"
    ):
        await service.imagine(ALICE, "a harbour --lora oil")
    service.info = dataclasses.replace(service.info, loras=())
    with pytest.raises(PromptError, match="none are \\(the operator sets IMAGINE_LORA_DIR\\)"):
        await service.imagine(ALICE, "a harbour --lora ink")
    assert await count_jobs(store) == before


async def test_the_members_style_is_a_default_the_prompt_overrides(styled):
    store, engine, dispatcher, service = styled
    await store.update_member_settings(ALICE.user_id, ALICE.guild_id, lora="neon")
    [job] = await done(dispatcher, store, await service.imagine(ALICE, "a harbour"))
    assert job.prompt == "a harbour --lora neon" and engine.requests[-1].lora == LoraChoice("neon")
    [_own] = await done(dispatcher, store, await service.imagine(ALICE, "a harbour --lora ink:0.5"))
    assert engine.requests[-1].lora == LoraChoice("ink", 0.5)
