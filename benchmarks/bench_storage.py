"""Benchmark of the job history: `python -m benchmarks.bench_storage [--jobs 100000] [--url URL]`.

Prints figures, asserts nothing. It measures what users wait on:

- inserts per second through `Store.create_job` (one transaction per job, as the bot does it),
  one writer after another and many at once;
- `complete_job` with real PNG encoding (the store's share of a finished job's latency);
- the latency of history queries (a moderator's page, a user's page, text search, a deep page,
  lineage, recovery) over a history of `--jobs` jobs with their image rows.

The history is bulk-loaded in large transactions (that speed is printed too, but it is not what
the bot does). By default everything happens in a temporary SQLite file, removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image as PILImage
from sqlalchemy import insert, text

from storage import png
from storage.models import Image, Job, new_job_id
from storage.queries import HistoryQuery
from storage.store import Store

WORDS = [
    *("lighthouse", "dusk", "fox", "forest", "castle", "neon", "city", "portrait", "astronaut", "dragon"),
    *("ocean", "storm", "cat", "robot", "garden", "desert", "mountain", "river", "watercolor", "oil"),
    *("painting", "cinematic", "lighting", "studio", "cyberpunk", "baroque", "sunset", "misty", "ancient"),
    *("temple", "glass", "crystal", "ruins", "knight", "witch", "library", "train", "station", "winter"),
]
USERS, GUILDS = 2000, 20


def _prompt(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9)))


class _Raster:
    """Raw RGB pixels that compress like a generated picture: smooth shapes with some grain."""

    def __init__(self, width: int, height: int, rng: random.Random) -> None:

        shapes = PILImage.effect_mandelbrot((width, height), (-2.0, -1.5, 1.0, 1.5), 100).convert("RGB")
        grain = PILImage.effect_noise((width, height), 24 + rng.randrange(8)).convert("RGB")
        picture = PILImage.blend(shapes, grain, 0.2)
        self.width, self.height, self.rgb = width, height, picture.tobytes()


def _ms(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms"


async def _timed(work: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await work()  # warm: statement cache, pool
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await work()
        times.append(time.perf_counter() - start)
    return times


async def bench_inserts(store: Store, count: int) -> None:
    start = time.perf_counter()
    for n in range(count):
        await store.create_job(user_id=n % 50, user_name="bench", kind="imagine", prompt="bench job")
    elapsed = time.perf_counter() - start
    each = elapsed / count * 1000
    print(f"create_job, one writer:        {count / elapsed:8.0f} jobs/s  ({each:.2f} ms each)")

    tasks, per_task = 20, max(1, count // 20)

    async def writer(n: int) -> None:
        for _ in range(per_task):
            await store.create_job(user_id=n, user_name="bench", kind="imagine", prompt="bench job")

    start = time.perf_counter()
    await asyncio.gather(*(writer(n) for n in range(tasks)))
    elapsed = time.perf_counter() - start
    print(f"create_job, {tasks} writers at once: {tasks * per_task / elapsed:6.0f} jobs/s")


async def bench_complete(store: Store, width: int, height: int, repeat: int) -> None:
    rng = random.Random(1)
    cells = [_Raster(width, height, rng) for _ in range(4)]
    grid = _Raster(width * 2, height * 2, rng)
    times = []
    for _ in range(repeat):
        job = await store.create_job(user_id=1, kind="imagine")
        start = time.perf_counter()
        await store.complete_job(job.id, cells, seeds=[1, 2, 3, 4], grid=grid, timings={})
        times.append(time.perf_counter() - start)
    label = f"4x{width}x{height} + {width * 2}x{height * 2} grid"
    print(f"complete_job {label:28s} (PNG, fsync): {_ms(times)}")


def bench_encode(size: int, repeat: int) -> None:
    """One cell encoded by Pillow (level 1, what the store used before) and by `storage.png`, one thread."""

    raster = _Raster(size, size, random.Random(2))
    picture = PILImage.frombytes("RGB", (size, size), raster.rgb)
    pixels = np.asarray(picture)

    def pillow() -> bytes:
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=1)
        return buffer.getvalue()

    for name, encode in (
        ("Pillow level 1", pillow),
        (f"storage.png, {png.DEFAULT_DEFLATER.name}", lambda: png.encode(pixels)),
        (f"storage.png, {png.STDLIB_DEFLATER.name}", lambda: png.encode(pixels, png.STDLIB_DEFLATER)),
    ):
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            data = encode()
            times.append(time.perf_counter() - start)
        print(f"PNG encode {size}x{size}, {name:26s} {_ms(times)}  {len(data) / 1e6:5.2f} MB")


async def bulk_load(store: Store, total: int, seed: int = 7) -> tuple[list[str], str]:
    """Fill the history with `total` realistic jobs over 90 days; returns (job ids, deep leaf id)."""
    rng = random.Random(seed)
    files = store.files
    start_at = datetime(2026, 1, 1, tzinfo=UTC)
    step = timedelta(days=90) / max(total, 1)
    ids: list[str] = []
    batch = 5000
    started = time.perf_counter()
    for first in range(0, total, batch):
        jobs: list[dict[str, Any]] = []
        images: list[dict[str, Any]] = []
        for n in range(first, min(total, first + batch)):
            job_id = new_job_id()
            derived = ids and rng.random() < 0.35
            status = rng.choices(["done", "failed", "cancelled", "blocked"], [90, 5, 4, 1])[0]
            prompt = _prompt(rng)
            jobs.append(
                {
                    "id": job_id,
                    "kind": rng.choice(["vary", "upscale", "zoom"]) if derived else "imagine",
                    "status": status,
                    "source": "discord",
                    "user_id": rng.randrange(USERS),
                    "user_name": "u",
                    "guild_id": 1000 + rng.randrange(GUILDS),
                    "channel_id": 5,
                    "message_id": None,
                    "raw_prompt": prompt,
                    "prompt": f"{prompt} --ar 1:1",
                    "params": {},
                    "model": "sdxl",
                    "width": 1024,
                    "height": 1024,
                    "seed": rng.randrange(2**32),
                    "parent_id": rng.choice(ids[-2000:]) if derived else None,
                    "parent_index": rng.randrange(4) if derived else None,
                    "created_at": start_at + step * n,
                    "started_at": None,
                    "finished_at": None,
                    "queue_position": None,
                    "attempts": 1,
                    "error": None,
                    "timings": {"total_s": 5.0},
                    "hidden": rng.random() < 0.01,
                    "hidden_by": None,
                    "hidden_reason": None,
                    "deleted": False,
                    "blocked_rule": None,
                }
            )
            ids.append(job_id)
            if status == "done":
                for index in (-1, 0, 1, 2, 3):
                    images.append(
                        {
                            "job_id": job_id,
                            "index": index,
                            "path": files.relative_path(job_id, index),
                            "width": 1024,
                            "height": 1024,
                            "seed": rng.randrange(2**32),
                            "sha256": "0" * 64,
                            "bytes": 1_500_000,
                        }
                    )

        async def load(
            session: Any, jobs: list[dict[str, Any]] = jobs, images: list[dict[str, Any]] = images
        ) -> None:
            await session.execute(insert(Job.__table__), jobs)
            await session.execute(insert(Image.__table__), images)

        await store.db.transaction(load)
    elapsed = time.perf_counter() - started
    print(f"bulk load: {total} jobs + their image rows in {elapsed:.1f} s ({total / elapsed:.0f} jobs/s)")
    if store.db.engine.dialect.name != "sqlite":
        # A live server's autovacuum gathers statistics within a minute of a load this size; without
        # them PostgreSQL plans a fresh 500,000-row table as if it were tiny (sequential scans).
        async def analyze(session: Any) -> None:
            await session.execute(text("ANALYZE"))

        await store.db.transaction(analyze)

    # a chain 30 generations deep for the lineage query
    parent = ids[-1]
    for _ in range(30):
        parent = (await store.create_job(user_id=1, kind="vary", parent_id=parent, parent_index=0)).id
    return ids, parent


async def bench_queries(store: Store, ids: list[str], leaf: str, repeat: int) -> None:
    rng = random.Random(3)
    user = rng.randrange(USERS)
    guild = 1000 + rng.randrange(GUILDS)
    first = await store.history(HistoryQuery(limit=20))
    cursor = first.next_cursor
    for _ in range(49):  # walk to page 50
        cursor = (await store.history(HistoryQuery(limit=20, before=cursor))).next_cursor
    since = datetime(2026, 2, 1, tzinfo=UTC)
    cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("history page 1 (everyone)", lambda: store.history(HistoryQuery(limit=20))),
        ("history page 50 (keyset cursor)", lambda: store.history(HistoryQuery(limit=20, before=cursor))),
        ("history of one user", lambda: store.history(HistoryQuery(user_id=user, limit=20))),
        (
            "history guild + status failed",
            lambda: store.history(HistoryQuery(guild_id=guild, status="failed")),
        ),
        ("history text 'lighthouse'", lambda: store.history(HistoryQuery(text="lighthouse", limit=20))),
        ("history text, rare ('zzz', full scan)", lambda: store.history(HistoryQuery(text="zzz", limit=20))),
        (
            "history date range, 1 week",
            lambda: store.history(HistoryQuery(since=since, until=since + timedelta(7))),
        ),
        ("lineage, 30 generations", lambda: store.lineage(leaf)),
        ("get_job", lambda: store.get_job(rng.choice(ids))),
        (f"pending_jobs (recovery, {len(await store.pending_jobs())} queued)", store.pending_jobs),
        ("active_ban", lambda: store.active_ban(user, guild)),
    ]
    for name, work in cases:
        print(f"{name:40s} {_ms(await _timed(work, repeat))}")


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_storage", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument(
        "--jobs", type=int, default=100_000, help="size of the history to query (default 100000)"
    )
    parser.add_argument(
        "--inserts", type=int, default=1000, help="jobs created one by one for the insert rate"
    )
    parser.add_argument("--repeat", type=int, default=30, help="runs per query")
    parser.add_argument("--url", default=None, help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="imagine-bench-") as tmp:
        store = await Store.open(args.url, Path(tmp))
        try:
            backend = store.db.engine.dialect.name
            print(
                f"storage benchmark on {backend} ({store.db.engine.url.render_as_string(hide_password=True)})"
            )
            await bench_inserts(store, args.inserts)
            for size in (512, 1024):
                bench_encode(size, 5)
            await bench_complete(store, 176, 96, 20)
            await bench_complete(store, 512, 512, 10)
            await bench_complete(store, 1024, 1024, 5)
            ids, leaf = await bulk_load(store, args.jobs)
            await bench_queries(store, ids, leaf, args.repeat)
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
