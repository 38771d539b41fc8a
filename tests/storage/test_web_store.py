"""The web's share of the store: the gallery's and the desk's history filters, and sign-in tokens
kept by their hash (a link redeemed once, even by two at once; sessions that expire and end)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from storage.errors import InvalidInputError
from storage.models import utcnow
from storage.queries import HistoryQuery
from storage.store import Store

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
HASH_A, HASH_B = "a" * 64, "b" * 64


async def _job(store: Store, minute: int, **fields):
    fields.setdefault("user_id", 1)
    fields.setdefault("kind", "imagine")
    return await store.create_job(created_at=T0 + timedelta(minutes=minute), **fields)


async def test_kind_hidden_and_reported_filters(store: Store) -> None:
    grid = await _job(store, 0, guild_id=5)
    vary = await _job(store, 1, kind="vary", guild_id=5)
    hidden = await _job(store, 2, kind="vary", guild_id=5)
    await store.set_hidden(hidden.id, True, 9, "spam")
    await store.add_report(grid.id, 5, 2, "rude")

    async def ids(**query) -> list[str]:
        return [job.id for job in (await store.history(HistoryQuery(**query))).jobs]

    assert await ids(kind="vary") == [hidden.id, vary.id]
    assert await ids(kind=["vary", "imagine"], include_hidden=False) == [vary.id, grid.id]
    assert await ids(hidden=True) == [hidden.id]
    assert await ids(hidden=False) == [vary.id, grid.id]
    assert await ids(reported=True) == [grid.id]
    with pytest.raises(InvalidInputError, match="unknown job kind 'nope'"):
        await store.history(HistoryQuery(kind="nope"))


async def _token(store: Store, token_hash: str, purpose: str, expires_in: timedelta) -> None:
    await store.add_web_token(
        token_hash,
        purpose,
        user_id=7,
        user_name="m",
        guild_id=5,
        moderator=True,
        expires_at=utcnow() + expires_in,
    )


async def test_a_link_is_redeemed_once_even_by_two_at_once(store: Store) -> None:
    await _token(store, HASH_A, "link", timedelta(minutes=15))
    results = await asyncio.gather(store.redeem_web_link(HASH_A), store.redeem_web_link(HASH_A))
    winners = [row for row in results if row is not None]
    assert len(winners) == 1 and (winners[0].user_id, winners[0].moderator) == (7, True)
    assert await store.redeem_web_link(HASH_A) is None
    assert await store.web_session(HASH_A) is None  # a link is not a session


async def test_expired_tokens_do_nothing_and_are_swept(store: Store) -> None:
    await _token(store, HASH_A, "link", timedelta(seconds=-1))
    await _token(store, HASH_B, "session", timedelta(seconds=-1))
    assert await store.redeem_web_link(HASH_A) is None
    assert await store.web_session(HASH_B) is None
    assert await store.sweep_web_tokens() == 2


async def test_a_session_lasts_until_it_is_ended(store: Store) -> None:
    await _token(store, HASH_B, "session", timedelta(days=7))
    assert (await store.web_session(HASH_B)).user_id == 7
    await store.end_web_session(HASH_B)
    assert await store.web_session(HASH_B) is None


@pytest.mark.parametrize("bad", ["", "A" * 64, "a" * 63, "secret-token"])
async def test_only_hashes_are_accepted(store: Store, bad: str) -> None:
    with pytest.raises(InvalidInputError, match="SHA-256"):
        await _token(store, bad, "link", timedelta(minutes=1))
