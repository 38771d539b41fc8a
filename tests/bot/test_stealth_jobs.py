"""Stealth in the core and the store: the member's choice counts only where the server allows it,
is recorded on each new job (re-rolls, variations, separated images), and outlives the setting."""

from __future__ import annotations

import dataclasses

import pytest

from bot.core.jobs import Action
from storage.errors import InvalidInputError
from tests.support.job_service import ALICE, done, grid

BOB = dataclasses.replace(ALICE, user_id=12, user_name="bob")


async def test_stealth_is_recorded_per_job_only_where_the_server_allows_it(env):
    store, _, dispatcher, service = env
    await store.update_member_settings(ALICE.user_id, ALICE.guild_id, stealth=True)
    [public] = await done(dispatcher, store, await service.imagine(ALICE, "a harbour"))
    assert "stealth" not in public.params  # the server does not allow Stealth (the default)

    await store.update_guild_settings(ALICE.guild_id, allow_stealth=True)
    parent = await grid(env)
    assert parent.params["stealth"] is True
    single = await service.derive(ALICE, parent.id, Action.UPSCALE, index=0)
    [varied] = await done(dispatcher, store, [await service.derive(ALICE, parent.id, Action.VARY, index=1)])
    assert single.params["stealth"] is True and varied.params["stealth"] is True
    # Bob (public) re-rolls Alice's stealth grid: his job is his own, and public.
    [rerolled] = await done(dispatcher, store, [await service.derive(BOB, parent.id, Action.REROLL)])
    assert rerolled.user_id == BOB.user_id and "stealth" not in rerolled.params

    await store.update_guild_settings(ALICE.guild_id, allow_stealth=False)
    [later] = await done(dispatcher, store, await service.imagine(ALICE, "a harbour"))
    assert "stealth" not in later.params
    assert (await store.get_job(parent.id)).params["stealth"] is True  # made stealth, stays so


async def test_the_store_refuses_a_stealth_flag_that_is_not_true_or_false(env):
    store = env[0]
    with pytest.raises(InvalidInputError):
        await store.update_member_settings(ALICE.user_id, ALICE.guild_id, stealth="yes")  # type: ignore[typeddict-item]
    with pytest.raises(InvalidInputError):
        await store.update_guild_settings(ALICE.guild_id, allow_stealth=1)  # type: ignore[typeddict-item]
    assert (await store.member_settings(ALICE.user_id, ALICE.guild_id)).stealth is False
    assert (await store.guild_settings(ALICE.guild_id)).allow_stealth is False
