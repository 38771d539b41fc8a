"""`check_submission` against the real Store on a temporary SQLite file: bans with expiry, global
and per-guild rules, and what a refused member is told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import moderation
from bot.core.moderation import BannedError, BlockedError, check_submission
from storage.store import Store

GUILD = 111
OTHER_GUILD = 222
ALICE = 1001
MOD = 9


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(None, tmp_path)
    try:
        yield store
    finally:
        await store.close()


async def test_clean_prompt_from_unbanned_member_passes(store: Store) -> None:
    await store.add_banned_word(GUILD, "bad", False, MOD)
    await check_submission(store, ALICE, GUILD, ["a lighthouse at dusk", "people"])


async def test_banned_member_is_refused_with_reason_and_end(store: Store) -> None:
    until = datetime.now(UTC) + timedelta(days=3)
    await store.ban(ALICE, GUILD, "spamming the channel", MOD, expires_at=until)
    with pytest.raises(BannedError) as caught:
        await check_submission(store, ALICE, GUILD, ["a cat"])
    assert caught.value.reason == "spamming the channel"
    assert "spamming the channel" in caught.value.user_message
    assert f"{until:%Y-%m-%d %H:%M} UTC" in caught.value.user_message
    # the ban is per guild: the same member elsewhere is fine
    await check_submission(store, ALICE, OTHER_GUILD, ["a cat"])


async def test_global_ban_applies_in_every_guild(store: Store) -> None:
    await store.ban(ALICE, None, "abuse", MOD)
    for guild in (GUILD, OTHER_GUILD, None):
        with pytest.raises(BannedError, match="until a moderator lifts it"):
            await check_submission(store, ALICE, guild, ["a cat"])


async def test_timed_ban_ends_by_itself(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime.now(UTC)
    await store.ban(ALICE, GUILD, "cool off", MOD, expires_at=start + timedelta(hours=1))
    monkeypatch.setattr(moderation, "clock", lambda: start + timedelta(minutes=59))
    with pytest.raises(BannedError):
        await check_submission(store, ALICE, GUILD, ["a cat"])
    monkeypatch.setattr(moderation, "clock", lambda: start + timedelta(hours=1, seconds=1))
    await check_submission(store, ALICE, GUILD, ["a cat"])


async def test_lifted_ban_no_longer_refuses(store: Store) -> None:
    await store.ban(ALICE, GUILD, "oops", MOD)
    assert await store.unban(ALICE, GUILD, MOD)
    await check_submission(store, ALICE, GUILD, ["a cat"])


async def test_banned_word_blocks_with_the_matching_rule(store: Store) -> None:
    await store.add_banned_word(GUILD, "gore", False, MOD)
    await store.add_banned_word(GUILD, r"b[l1]ood\w*", True, MOD)
    with pytest.raises(BlockedError) as caught:
        await check_submission(store, ALICE, GUILD, ["a calm lake", "g.o.r.e"])
    assert caught.value.rule.pattern == "gore"
    assert "gore" not in str(caught.value)  # the member is not told which rule
    with pytest.raises(BlockedError) as caught:
        await check_submission(store, ALICE, GUILD, ["BL00DY mess"])
    assert caught.value.rule_text == r"/b[l1]ood\w*/"


async def test_rules_are_per_guild_plus_global(store: Store) -> None:
    await store.add_banned_word(GUILD, "gore", False, MOD)
    await store.add_banned_word(None, "nsfw", False, MOD)
    await check_submission(store, ALICE, OTHER_GUILD, ["gore"])  # another guild's rule
    with pytest.raises(BlockedError):
        await check_submission(store, ALICE, OTHER_GUILD, ["an NSFW scene"])  # a global rule


async def test_ban_is_checked_before_words(store: Store) -> None:
    await store.add_banned_word(GUILD, "gore", False, MOD)
    await store.ban(ALICE, GUILD, "x", MOD)
    with pytest.raises(BannedError):
        await check_submission(store, ALICE, GUILD, ["gore"])
