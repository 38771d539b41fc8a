"""History search: filters, literal text search, keyset pagination, lineage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.errors import InvalidInputError, NotFoundError
from storage.queries import HistoryQuery
from storage.store import Store
from tests.storage.conftest import raster

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def _job(store: Store, minute: int, **fields):
    fields.setdefault("user_id", 1)
    fields.setdefault("kind", "imagine")
    return await store.create_job(created_at=T0 + timedelta(minutes=minute), **fields)


async def _all_pages(store: Store, query: HistoryQuery) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = await store.history(HistoryQuery(**{**query.__dict__, "before": cursor}))
        pages.append([job.id for job in page.jobs])
        cursor = page.next_cursor
        if cursor is None:
            return pages


async def test_pages_walk_the_whole_history_newest_first_without_gaps_or_repeats(store: Store) -> None:
    ids = [(await _job(store, minute)).id for minute in range(7)]
    # Three jobs at the very same instant: the id breaks the tie, nothing is lost between pages.
    same = [(await _job(store, 3, prompt=f"tie {n}")).id for n in range(3)]
    pages = await _all_pages(store, HistoryQuery(limit=3))
    assert [len(page) for page in pages] == [3, 3, 3, 1]
    flat = [job_id for page in pages for job_id in page]
    assert sorted(flat) == sorted(ids + same) and len(set(flat)) == 10
    expected = [*reversed(ids[4:]), *sorted([ids[3], *same], reverse=True), *reversed(ids[:3])]
    assert flat == expected


async def test_a_page_boundary_is_stable_while_new_jobs_arrive(store: Store) -> None:
    for minute in range(4):
        await _job(store, minute)
    first = await store.history(HistoryQuery(limit=2))
    await _job(store, 10)  # someone creates a job while the moderator is on page 1
    second = await store.history(HistoryQuery(limit=2, before=first.next_cursor))
    assert [job.created_at for job in second.jobs] == [T0 + timedelta(minutes=1), T0]
    assert second.next_cursor is None


async def test_filters_combine(store: Store) -> None:
    await _job(store, 0, user_id=1, guild_id=100, prompt="red fox")
    await _job(store, 1, user_id=2, guild_id=100, prompt="blue fox", status="failed")
    await _job(store, 2, user_id=1, guild_id=200, prompt="red barn")
    await _job(store, 3, user_id=1, guild_id=100, prompt="green fox", status="running")
    hidden = await _job(store, 4, user_id=1, guild_id=100, prompt="red fox again")
    await store.set_hidden(hidden.id, True, moderator_id=9, reason="spam")

    async def prompts(**kwargs) -> list[str]:
        return [job.prompt for job in (await store.history(HistoryQuery(**kwargs))).jobs]

    assert await prompts(user_id=1, guild_id=100) == ["red fox again", "green fox", "red fox"]
    assert await prompts(guild_id=100, status="failed") == ["blue fox"]
    assert await prompts(status=["failed", "running"]) == ["green fox", "blue fox"]
    assert await prompts(text="RED") == ["red fox again", "red barn", "red fox"]
    assert await prompts(text="red", include_hidden=False) == ["red barn", "red fox"]
    assert await prompts(since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3)) == [
        "red barn",
        "blue fox",
    ]
    # a date range given in another timezone means the same instants
    plus_two = T0.astimezone(UTC).replace(tzinfo=None)  # naive = UTC
    assert await prompts(until=plus_two + timedelta(minutes=1)) == ["red fox"]
    assert await prompts(user_id=3) == []


async def test_text_search_takes_percent_underscore_and_backslash_literally(store: Store) -> None:
    await _job(store, 0, prompt="100% cotton", raw_prompt="100% cotton")
    await _job(store, 1, prompt="1000 cotton", raw_prompt="1000 cotton")
    await _job(store, 2, prompt="snake_case", raw_prompt="snake_case")
    await _job(store, 3, prompt="snakeXcase", raw_prompt="snakeXcase")
    await _job(store, 4, prompt="back\\slash", raw_prompt="back\\slash")
    await _job(store, 5, prompt="a castle", raw_prompt="a  CASTLE —ar 2:1")  # found by the raw text too

    async def found(text: str) -> list[str]:
        return [job.prompt for job in (await store.history(HistoryQuery(text=text))).jobs]

    assert await found("0%") == ["100% cotton"]
    assert await found("e_c") == ["snake_case"]
    assert await found("k\\s") == ["back\\slash"]
    assert await found("—ar") == ["a castle"]
    assert await found("%") == ["100% cotton"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (HistoryQuery(limit=0), "history limit must be a whole number from 1 to 500"),
        (HistoryQuery(limit=501), "from 1 to 500"),
        (HistoryQuery(status="sleeping"), "unknown job status 'sleeping'"),
        (HistoryQuery(before="not-a-cursor"), "is not one this store gave out"),
        (HistoryQuery(before="Zm9vYmFy"), "is not one this store gave out"),
    ],
)
async def test_a_bad_history_query_is_refused_clearly(
    store: Store, query: HistoryQuery, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await store.history(query)


async def test_lineage_several_levels_deep_with_branches(store: Store) -> None:
    root = await _job(store, 0, prompt="root")
    chain = [root]
    for depth in range(1, 6):  # root -> u -> v -> u -> v -> zoom
        chain.append(
            await _job(
                store,
                depth,
                kind="upscale" if depth % 2 else "vary",
                parent_id=chain[-1].id,
                parent_index=depth % 4,
            )
        )
    sibling = await _job(store, 10, kind="vary", parent_id=chain[2].id, parent_index=1)
    nephew = await _job(store, 11, kind="pan", parent_id=sibling.id)
    unrelated = await _job(store, 12, prompt="other")

    middle = await store.lineage(chain[3].id)
    assert [job.id for job in middle.ancestors] == [chain[0].id, chain[1].id, chain[2].id]
    assert middle.job.id == chain[3].id
    assert [job.id for job in middle.descendants] == [chain[4].id, chain[5].id]

    top = await store.lineage(root.id)
    assert top.ancestors == []
    # generation by generation: depth 1, 2, then chain[3] and sibling (depth 3, by time), ...
    assert [job.id for job in top.descendants] == [
        chain[1].id,
        chain[2].id,
        chain[3].id,
        sibling.id,
        chain[4].id,
        nephew.id,
        chain[5].id,
    ]
    assert unrelated.id not in {job.id for job in top.descendants}
    leaf = await store.lineage(nephew.id)
    assert [job.id for job in leaf.ancestors] == [root.id, chain[1].id, chain[2].id, sibling.id]
    assert leaf.descendants == []
    assert leaf.job.parent_index is None and sibling.parent_index == 1
    with pytest.raises(NotFoundError):
        await store.lineage("missing")


async def test_lineage_ancestors_come_with_their_images(store: Store) -> None:

    root = await _job(store, 0)
    await store.complete_job(
        root.id, [raster(value=n) for n in range(4)], seeds=[1, 2, 3, 4], grid=raster(16, 16)
    )
    child = await _job(store, 1, kind="upscale", parent_id=root.id, parent_index=2)
    lineage = await store.lineage(child.id)
    assert lineage.ancestors[0].cells[2].seed == 3 and lineage.ancestors[0].grid is not None
