"""`StandInEngine`: the one test double of the engine boundary (requests in, typed events out).

The dispatcher, job-service, console and Discord tests use it so that order, limits, retries,
cancels and held jobs are checkable exactly and in milliseconds, while the store, the files, the
job service and the bot stay real; `benchmarks/bench_dispatch.py` and
`benchmarks/bench_discord.py` use it to isolate our own overhead from the engine's time.

Two ways to hold a job, for the two kinds of test that need one:

- `hold` (job ids) and `release(job_id)`: the dispatcher tests park chosen jobs right after
  `Started`;
- `gate` (an `asyncio.Event`) and `hold_step`: the Discord tests park every job before step
  `hold_step + 1` until the gate opens; under SimCord the wait is declared external (`env`), so
  the simulated Discord does not count it as the bot's own work.

`textured=True` answers with grainy, seed-coloured pictures (PNG sizes like real ones, which the
Discord upload tests need) and a preview with every step; the default answers with flat pictures.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from PIL import Image

from engine.api import (
    EngineEvent,
    EngineRequest,
    Failed,
    Family,
    Finished,
    ImageData,
    ModelInfo,
    Progress,
    Started,
)

INFO = ModelInfo(
    name="stand-in",
    family=Family.SD,
    native_width=64,
    native_height=64,
    size_step=8,
    default_steps=2,
    default_guidance=7.0,
    device="cpu",
)


def solid(width: int, height: int, value: int = 128) -> ImageData:
    """A flat grey picture."""
    return ImageData(width, height, bytes([value]) * (width * height * 3))


def textured(width: int, height: int, seed: int) -> ImageData:
    """A seed-coloured picture with grain (so PNGs have realistic sizes)."""
    colour = Image.new("RGB", (width, height), ((seed * 53) % 256, (seed * 97) % 256, (seed * 193) % 256))
    grain = Image.effect_noise((width, height), 48).convert("RGB")
    return ImageData.from_pil(Image.blend(colour, grain, 0.5))


def grid_of(images: list[ImageData]) -> ImageData:
    """Four pictures as a 2x2 grid."""
    w, h = images[0].width, images[0].height
    canvas = Image.new("RGB", (w * 2, h * 2))
    for i, image in enumerate(images):
        canvas.paste(image.to_pil(), ((i % 2) * w, (i // 2) * h))
    return ImageData.from_pil(canvas)


def output_size(request: EngineRequest) -> tuple[int, int]:
    """The size of each picture a stand-in answers `request` with: the size asked for, twice the
    source's for an upscale, the source's for the other edits."""
    if request.kind in ("imagine", "blend"):
        return request.width, request.height
    source = request.source
    if request.kind == "upscale":
        return source.width * 2, source.height * 2
    return source.width, source.height


def answer_for(request: EngineRequest) -> Finished | None:
    """The stand-in's answer to a question with no picture (None for the others): /shorten
    scores a word by its length (longer matters more), /describe names the picture's size."""
    if request.kind == "shorten":
        return Finished(request.job_id, (), (), scores=tuple(len(word) / 10 for word in request.words))
    if request.kind == "describe":
        image = request.image
        texts = tuple(
            f"picture {n} of {image.width}x{image.height} pixels" for n in range(1, request.count + 1)
        )
        return Finished(request.job_id, (), (), texts=texts)
    return None


class StandInEngine:
    """An `EngineClient` that runs each request in a few awaits, or holds it until told."""

    def __init__(
        self,
        steps: int | None = None,
        slots: int = 1,
        *,
        slots_: int | None = None,  # the older spelling of `slots`
        hold: Iterable[str] = (),
        failures: Mapping[str, list[Failed]] | None = None,
        lost_before_start: Mapping[str, int] | None = None,
        info: ModelInfo | None = None,
        textured: bool = False,
    ) -> None:
        self.textured = textured
        self.steps = steps if steps is not None else (4 if textured else 2)
        self.slots = slots_ if slots_ is not None else slots
        self.hold = set(hold)  # job ids that wait for `release`
        self.failures = dict(failures or {})  # job id -> failures, one per attempt
        # job id -> how many more times it is lost before it starts (an engine process that died
        # while the job waited inside it): a retryable Failed with no Started before it
        self.lost_before_start = dict(lost_before_start or {})
        self._info = info  # what `start` reports; by default INFO (with `steps` when textured)
        self.seen: list[str] = []  # job ids in the order the engine got them
        self.requests: list[EngineRequest] = []
        self.active: set[str] = set()
        self.closed = False
        self.gate: asyncio.Event | None = None  # set: jobs wait for it before step `hold_step + 1`
        self.hold_step = 0
        self.env: Any = None  # a `simcord.Env`, when the test runs under SimCord
        self.fail_with: str | None = None  # set: jobs fail with this reason instead
        self._gates: dict[str, asyncio.Event] = {}
        self._wakes: dict[str, asyncio.Event] = {}
        self._cancelled: set[str] = set()
        self._changed = asyncio.Condition()

    @property
    def info(self) -> ModelInfo:
        if self._info is not None:
            return self._info
        return dataclasses.replace(INFO, default_steps=self.steps) if self.textured else INFO

    @info.setter
    def info(self, value: ModelInfo) -> None:
        self._info = value

    async def start(self) -> ModelInfo:
        return self.info

    def release(self, job_id: str) -> None:
        self.hold.discard(job_id)
        if job_id in self._gates:
            self._gates[job_id].set()

    async def wait_active(self, job_id: str) -> None:
        """Until the engine is working on `job_id`."""
        async with self._changed:
            await self._changed.wait_for(lambda: job_id in self.active)

    async def wait_seen(self, job_id: str) -> None:
        """Until the engine has been handed `job_id`."""
        async with self._changed:
            await self._changed.wait_for(lambda: job_id in self.seen)

    async def _mark_active(self, job_id: str, active: bool) -> None:
        async with self._changed:
            if active:
                self.active.add(job_id)
            else:
                self.active.discard(job_id)
            self._changed.notify_all()

    async def submit(self, request: EngineRequest) -> AsyncIterator[EngineEvent]:
        job_id = request.job_id
        self.seen.append(job_id)
        self.requests.append(request)
        if self.textured:
            self._cancelled.discard(job_id)  # a new attempt (recovery) starts afresh
        await self._mark_active(job_id, True)
        try:
            if self.lost_before_start.get(job_id, 0) > 0:
                self.lost_before_start[job_id] -= 1
                yield Failed(job_id, "The engine restarted before this job began", retryable=True)
                return
            yield Started(job_id)
            if job_id in self.hold:
                await self._until_released_or_cancelled(job_id)
            for step in range(1, self.steps + 1):
                if step == self.hold_step + 1:
                    await self._hold()
                if job_id in self._cancelled:
                    if not self.textured:
                        self._cancelled.discard(job_id)
                    yield Failed(job_id, "cancelled")
                    return
                if self.textured:
                    yield Progress(job_id, step, self.steps, preview=textured(8, 8, step))
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(0)
                    yield Progress(job_id, step, self.steps)
            if self.fail_with is not None:
                yield Failed(job_id, self.fail_with)
                return
            planned = self.failures.get(job_id)
            if planned:
                yield planned.pop(0)
                return
            yield self._finished(request)
        finally:
            self.active.discard(job_id)

    async def _until_released_or_cancelled(self, job_id: str) -> None:
        gate = self._gates.setdefault(job_id, asyncio.Event())
        while not gate.is_set() and job_id not in self._cancelled:
            wake = self._wakes[job_id] = asyncio.Event()
            waiters = {asyncio.ensure_future(gate.wait()), asyncio.ensure_future(wake.wait())}
            _, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()

    async def _hold(self) -> None:
        gate = self.gate
        if gate is None or gate.is_set():
            return
        if self.env is None:
            await gate.wait()
            return
        import simcord  # the Discord tests' dependency; only a gated SimCord test gets here

        # A job started by a click runs in work SimCord tracks: declare the wait as external.
        try:
            await self.env.external_wait(gate.wait(), reason="test holds the engine")
        except simcord.SetupError:
            await gate.wait()

    def _finished(self, request: EngineRequest) -> Finished:
        answer = answer_for(request)
        if answer is not None:
            return answer
        width, height = output_size(request)
        if self.textured:
            seeds = tuple(getattr(request, "seeds", None) or (getattr(request, "seed", 0),))
            images = tuple(textured(width, height, seed) for seed in seeds)
            grid = grid_of(list(images)) if len(images) == 4 else None
            return Finished(request.job_id, images, seeds, grid)
        if request.kind == "upscale":
            return Finished(request.job_id, (solid(width, height),), (request.seed,))
        flat = tuple(solid(width, height, 40 * i) for i in range(len(request.seeds)))
        return Finished(
            request.job_id,
            flat,
            tuple(request.seeds),
            grid=solid(width * 2, height * 2),
            timings={"total": 0.0},
        )

    async def cancel(self, job_id: str) -> None:
        self._cancelled.add(job_id)
        if job_id in self._wakes:
            self._wakes[job_id].set()  # a held job wakes to see it was cancelled
        if self.gate is not None and not self.gate.is_set():
            self.gate.set()
            self.gate = asyncio.Event()  # only the cancelled job goes on; the others stay held

    async def close(self) -> None:
        self.closed = True
