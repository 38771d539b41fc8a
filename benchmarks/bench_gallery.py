"""Benchmark of Imagine Web's gallery: `python -m benchmarks.bench_gallery [--jobs 100000]`.

Prints the time per gallery page over a history of `--jobs` jobs, one fifth of them by one member
(the worst case for "my images"): the store's keyset query alone, and the whole page through the
web app over HTTP (session check, query, template). Pages 1 and 200 cost the same, because the
cursor is a (created_at, id) bound, not an OFFSET. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import update

from benchmarks.bench_storage import _ms, _timed, bulk_load
from bot.core.services import Services
from bot.core.web_access import WebMember, issue_link
from bot.settings import Settings
from bot.web.app import WebServer
from storage.models import Job
from storage.queries import HistoryQuery
from storage.store import Store
from tests.support.stand_in_engine import StandInEngine

MEMBER = 4242
PAGE = 24


async def give_member_a_fifth(store: Store) -> int:
    async def work(session: Any) -> int:
        result = await session.execute(update(Job).where(Job.seed % 5 == 0).values(user_id=MEMBER))
        return int(result.rowcount)

    return await store.db.transaction(work)


async def walk(store: Store, pages: int, **filters: Any) -> str | None:
    cursor = None
    for _ in range(pages - 1):
        page = await store.history(
            HistoryQuery(user_id=MEMBER, limit=PAGE, before=cursor, include_hidden=False, **filters)
        )
        cursor = page.next_cursor
    return cursor


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_gallery", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--jobs", type=int, default=100_000, help="size of the history (default 100000)")
    parser.add_argument("--repeat", type=int, default=30, help="runs per page")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        store = await Store.open(None, Path(tmp))
        services = await Services.start(
            Settings(data_dir=Path(tmp), model="stand-in"), engine=StandInEngine(), store=store
        )
        server = WebServer(services, "127.0.0.1", 0, None)
        try:
            await bulk_load(store, args.jobs)
            print(f"the member has {await give_member_a_fifth(store)} of {args.jobs} jobs")
            deep = await walk(store, 200)
            deep_kind = await walk(store, 50, kind="vary")
            print("store query (one gallery page of 24)")
            cases = [
                ("page 1", {}),
                ("page 200 (keyset cursor)", {"before": deep}),
                ("kind=vary, page 50", {"kind": "vary", "before": deep_kind}),
                ("prompt words 'lighthouse'", {"text": "lighthouse"}),
            ]
            for name, filters in cases:
                query = HistoryQuery(user_id=MEMBER, limit=PAGE, include_hidden=False, **filters)
                print(f"  {name:36s} {_ms(await _timed(lambda q=query: store.history(q), args.repeat))}")
            await server.start()
            link = await issue_link(store, server.url, WebMember(MEMBER, "member", 1000))
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                async with http.post(link) as response:
                    assert response.status == 200, response.status
                print("whole page over HTTP (session, query, template)")
                for name, path in [
                    ("GET / (page 1)", "/"),
                    ("GET /?before=… (page 200)", f"/?before={deep}"),
                    ("GET /?kind=vary&before=… (page 50)", f"/?kind=vary&before={deep_kind}"),
                    ("GET /?q=lighthouse", "/?q=lighthouse"),
                ]:

                    async def get(path: str = path) -> None:
                        async with http.get(server.url + path) as response:
                            body = await response.text()
                            assert response.status == 200 and len(re.findall('class="tile"', body)) == PAGE

                    print(f"  {name:36s} {_ms(await _timed(get, args.repeat))}")
        finally:
            await server.stop()
            await services.stop(grace_s=0.0)
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
