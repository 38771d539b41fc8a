"""What the Discord layer adds per job: `python -m benchmarks.bench_discord [JOBS]`.

Runs `/imagine` JOBS times through SimCord against the real store and dispatcher, with the
test stand-in engine (no diffusion work), and prints, per job:

- handler: `/imagine` from the bot receiving the interaction to the "Waiting" message posted
  (defer, rows, queueing, the first edit), and how much of it `JobService.imagine` takes;
- result: from the dispatcher's final update to the finished message edited in (reading the
  grid PNG from disk, upload, buttons);
- end to end: the whole round trip as the test harness sees it, SimCord's own settling included
  (an upper bound, not the bot's cost).

Figures only, no thresholds: speed is measured here, never asserted in the test suite.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import simcord

from benchmarks.timing import timed
from bot.core.services import Services
from bot.settings import Settings
from tests.bot.discord.conftest import make_bot
from tests.support.stand_in_engine import StandInEngine


def _summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return f"{name:<12} median {statistics.median(ms):7.1f} ms   p95 {p95:7.1f} ms   (n={len(ms)})"


async def bench(jobs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp) / "data", model="stand-in", device="cpu", engine="inprocess")
        engine = StandInEngine(steps=4, textured=True)
        services = await Services.start(settings, engine=engine)
        handler: list[float] = []
        result: list[float] = []
        total: list[float] = []
        service: list[float] = []
        try:
            bot = make_bot(services, set())
            original_render = bot.messenger._render

            async def timed_render(update, tracked):
                t0 = time.perf_counter()
                await original_render(update, tracked)
                if update.final:
                    result.append(time.perf_counter() - t0)

            services.jobs.imagine = timed(services.jobs.imagine, service)
            bot.actions.imagine = timed(bot.actions.imagine, handler)
            bot.messenger._render = timed_render
            async with simcord.run(bot, settle_timeout=60) as env:
                guild = env.create_guild()
                channel = guild.create_text_channel("bench")
                member = guild.add_member(env.create_user("bench"))
                for i in range(jobs):
                    t0 = time.perf_counter()
                    response = await member.slash(
                        channel, "imagine", prompt=f"benchmark picture {i} --seed {i}"
                    )
                    job = await services.store.find_job_by_message(response.response.id)
                    while bot.messenger.rendered_status(job.id) != "done":
                        await asyncio.sleep(0.001)
                    total.append(time.perf_counter() - t0)
        finally:
            await services.stop(grace_s=1.0)
    print(f"Discord layer, {jobs} /imagine jobs, stand-in engine (no diffusion), SQLite store")
    print(_summary("handler", handler))
    print(_summary("  of which", service) + "  <- JobService.imagine: rows, moderation, queueing")
    print(_summary("result", result))
    print(_summary("end to end", total))


if __name__ == "__main__":
    asyncio.run(bench(int(sys.argv[1]) if len(sys.argv) > 1 else 30))
