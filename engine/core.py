"""`EngineCore`: one resident model and every operation, in this process.

Everything that runs the engine wraps this class: the spawned worker (`engine/worker.py`), the
in-process client for tests and SimCord (`engine/inprocess.py`), the benchmark. It is
synchronous and single-job: `run` takes a request and reports through `emit` as it goes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import torch

from engine.api import (
    CANCELLED,
    BlendRequest,
    DescribeRequest,
    EngineConfig,
    EngineEvent,
    EngineRequest,
    Failed,
    Finished,
    ImageData,
    ImagineRequest,
    InpaintRequest,
    ModelInfo,
    OutpaintRequest,
    Progress,
    PromptSpec,
    ShortenRequest,
    Started,
    UpscaleRequest,
    VaryRequest,
    aspect_buckets,
)
from engine.lora import LoraAdapters
from engine.models import LoadedModel, closed_vocabulary, load_model
from engine.ops.blend import run_blend
from engine.ops.describe import Captioner, run_describe
from engine.ops.generate import Generation, OpContext, OpResult, generate_together
from engine.ops.grid import make_grid
from engine.ops.imagine import prepare_imagine, run_imagine
from engine.ops.inpaint import run_inpaint
from engine.ops.outpaint import run_outpaint
from engine.ops.preview import latents_to_preview
from engine.ops.references import NO_ADAPTER, ReferenceAdapter
from engine.ops.sampler import Cancelled
from engine.ops.shorten import run_shorten
from engine.ops.upscale import run_upscale
from engine.ops.vary import prepare_vary, run_vary, vary_size
from engine.speed import apply_speed

log = logging.getLogger(__name__)


# The most UNet rows x pixels one batch holds: four 1024x1024 grids with classifier-free guidance
# (4 jobs x 4 cells x 2 terms). More waits for the next loop, so a batch never needs more memory
# than a few large jobs.
BATCH_ROW_PIXELS = 4 * 4 * 2 * 1024 * 1024

# One job of a batch: its request, where its events go, and whether it should stop.
BatchJob = tuple[EngineRequest, Callable[[EngineEvent], None], Callable[[], bool]]


class EngineCore:
    """Loads the model once and runs requests one at a time.

    `preview_interval_s` throttles previews (a preview per step is cheap here but each one crosses
    a pipe and may become a Discord edit); `upscale_tile` overrides the preset's tile size.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        preview_interval_s: float = 0.25,
        upscale_tile: int | None = None,
    ) -> None:
        self.config = config
        self.preview_interval_s = preview_interval_s
        self.upscale_tile = upscale_tile
        self.model: LoadedModel | None = None
        self.info: ModelInfo | None = None
        self.warmed: list[tuple[int, int]] = []  # the sizes the warm-up ran, in order
        self.loras = LoraAdapters(None, None)  # the real ones once the model is loaded
        self.captioner: Captioner | None = None  # loaded on the first /describe
        self.reference_adapter: ReferenceAdapter | None = None  # loaded on the first --sref/--oref

    def load(self) -> ModelInfo:
        """Load the weights (once) and warm up; raises `ModelLoadError` with a readable reason."""
        if self.info is not None:
            return self.info
        started = time.perf_counter()
        self.model = load_model(
            self.config.model,
            self.config.device,
            self.config.inpaint_model,
            config=self.config.model_config,
            upscaler_model=self.config.upscaler_model,
            dtype=self.config.dtype,
            channels_last=self.config.channels_last,
        )
        speed = apply_speed(self.model, self.config)
        self.loras = LoraAdapters(self.model.pipe, self.config.lora_dir)
        preset = self.model.preset
        self.info = ModelInfo(
            name=self.config.model,
            family=self.model.family,
            native_width=preset.native_width,
            native_height=preset.native_height,
            size_step=preset.size_step,
            default_steps=preset.default_steps,
            default_guidance=preset.default_guidance,
            device=str(self.model.device),
            vocabulary=closed_vocabulary(self.model.pipe),
            speed=speed,
            loras=self.loras.names,
            references=bool(self.config.ip_adapter),
        )
        if self.config.warmup:
            warm_started = time.perf_counter()
            self._warm_up()
            warmup_s = time.perf_counter() - warm_started
            self.info = dataclasses.replace(self.info, warmup_s=round(warmup_s, 3))
            log.info(
                "warm-up took %.1fs (%d sizes: %s)",
                warmup_s,
                len(self.warmed),
                ", ".join(f"{w}x{h}" for w, h in self.warmed),
            )
        log.info("engine ready in %.1fs: %s", time.perf_counter() - started, self.info)
        return self.info

    def _warm_up(self) -> None:
        # One small step through every component: first-call costs (kernel selection, allocator
        # growth, lazy imports) are paid here, not by the first user.
        step = self.info.size_step
        size = max(step, (self.info.native_width // 2) // step * step)
        self._warm_job(size, size, seeds=(0,))
        if self.config.compile != "off":
            # A compiled UNet compiles again at each new shape (and records a CUDA graph per shape):
            # run one grid step at every aspect bucket now, so no user's first 16:9 pays for it.
            # The small one-image job above and these four-image ones differ in batch size too,
            # which lets dynamo make the batch dimension dynamic (queue depth changes it).
            for width, height in aspect_buckets(self.info.native_width, self.info.native_height, step):
                self._warm_job(width, height, seeds=(0, 1, 2, 3))

    def _warm_job(self, width: int, height: int, seeds: tuple[int, ...]) -> None:
        prompt = PromptSpec.single("warm up")
        request = ImagineRequest("warmup", prompt, seeds=seeds, width=width, height=height, steps=1)
        events: list[EngineEvent] = []
        self.run(request, events.append, lambda: False)
        if not isinstance(events[-1], Finished):
            # A model that cannot make one small picture should not report itself ready.
            raise RuntimeError(f"the model loaded but its warm-up job failed: {events[-1].reason}")
        self.warmed.append((width, height))

    # -----------------------------------------------------------------------------------------

    def run(
        self,
        request: EngineRequest,
        emit: Callable[[EngineEvent], None],
        should_stop: Callable[[], bool],
    ) -> None:
        """Run one request: `Started`, `Progress`..., then `Finished`, or `Failed` with the reason."""
        if self.model is None:
            self.load()
        job_id = getattr(request, "job_id", "?")
        emit(Started(job_id=job_id))
        started = time.perf_counter()
        ctx = self._context(job_id, emit, should_stop)
        try:
            self.loras.apply(getattr(request, "lora", None))
            result = self._dispatch(ctx, request)
        except Exception as exc:
            emit(self._failure(job_id, exc))
            return
        result.timings["total"] = time.perf_counter() - started
        emit(self._finished(job_id, result))

    def batch_key(self, request: EngineRequest) -> tuple[int, int, bool] | None:
        """Requests with equal keys may run together in `run_batch`; None: this one runs alone.

        Imagine (new grids, re-rolls, image prompts) and Vary jobs batch, with each other too:
        all are one denoising loop at one size. Upscale and outpaint run alone (tiles, masks).
        """
        if getattr(request, "lora", None) is not None:
            return None  # a LoRA style is switched per job: such jobs run alone
        if isinstance(request, ImagineRequest):
            # References put an adapter into the UNet for the job: it runs alone.
            return None if request.references else (request.width, request.height, request.tile)
        if isinstance(request, VaryRequest) and isinstance(request.source, ImageData) and self.info:
            return (*vary_size(request, self.info.size_step), request.tile)
        return None

    def run_batch(self, jobs: Sequence[BatchJob]) -> None:
        """Run requests of one `batch_key` together: one UNet call per step for all their cells.

        Each job gets its own events, as if it ran alone, and gets them as soon as its own part
        ends: a request that fails its checks, a job cancelled midway, a vary that needs fewer
        steps than the rest. Jobs past `BATCH_ROW_PIXELS` wait for the next loop. If the shared
        loop fails (out of GPU memory, a kernel error), the jobs it had not delivered run again
        one at a time: nobody loses a job to batching.
        """
        if self.model is None:
            self.load()
        keys = {self.batch_key(request) for request, _, _ in jobs}
        if len(keys) != 1 or None in keys:
            raise ValueError(f"run_batch takes imagine and vary requests of one size and tiling, got {keys}")
        if len(jobs) == 1:
            self.run(*jobs[0])
            return
        self.loras.apply(None)  # batched jobs have no style (`batch_key`)
        started = time.perf_counter()
        ready: list[tuple[BatchJob, Generation]] = []
        for job in jobs:
            request, emit, should_stop = job
            emit(Started(job_id=request.job_id))
            ctx = self._context(request.job_id, emit, should_stop)
            try:
                prepare = prepare_imagine if isinstance(request, ImagineRequest) else prepare_vary
                ready.append((job, prepare(ctx, request)))
            except Exception as exc:
                emit(self._failure(request.job_id, exc))
        chunk: list[tuple[BatchJob, Generation]] = []
        pixels = 0
        for job, gen in ready:
            # UNet rows: every cell once per conditioning term (`::` segments, `--no`, uncond).
            cost = gen.width * gen.height * gen.lane.latents.shape[0] * gen.lane.cond.terms
            if chunk and pixels + cost > BATCH_ROW_PIXELS:
                self._loop(chunk, started)
                chunk, pixels = [], 0
            chunk.append((job, gen))
            pixels += cost
        if chunk:
            self._loop(chunk, started)

    def _loop(self, chunk: list[tuple[BatchJob, Generation]], started: float) -> None:
        """One shared loop over prepared jobs; each job's outcome goes out when its lane ends."""
        delivered: set[int] = set()

        def deliver(i: int, images: list[ImageData] | None) -> None:
            (request, emit, _), gen = chunk[i]
            delivered.add(i)
            try:
                if images is None:
                    raise Cancelled
                timings = {**gen.timings, "total": time.perf_counter() - started}
                emit(self._finished(request.job_id, OpResult(images, list(request.seeds), timings)))
            except Exception as exc:  # this job's own ending (its grid, say) fails it alone
                emit(self._failure(request.job_id, exc))

        try:
            generate_together(self.model, [gen for _, gen in chunk], deliver)
            return
        except ValueError as exc:  # a request the loop refuses: every job in it is refused
            for i, ((request, emit, _), _) in enumerate(chunk):
                if i not in delivered:
                    emit(self._failure(request.job_id, exc))
            return
        except Exception as exc:
            # Several jobs at once may not fit where one does (GPU memory, a kernel's limits).
            log.warning("a batch of %d jobs failed (%s); running them one at a time", len(chunk), exc)
        again = [job for i, (job, _) in enumerate(chunk) if i not in delivered]
        del chunk[:]  # the generations hold their latents on the GPU
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        for job in again:
            self.run(*job)  # its progress starts over

    def _context(
        self, job_id: str, emit: Callable[[EngineEvent], None], should_stop: Callable[[], bool]
    ) -> OpContext:
        last_preview = [float("-inf")]

        def progress(step: int, total: int, x0: torch.Tensor) -> None:
            now = time.perf_counter()
            preview = None
            if now - last_preview[0] >= self.preview_interval_s or step == total:
                preview = latents_to_preview(x0, self.model.family)
                last_preview[0] = now
            emit(Progress(job_id=job_id, step=step, total=total, preview=preview))

        return OpContext(
            model=self.model,
            max_pixels=self.config.max_pixels,
            should_stop=should_stop,
            progress=progress,
            upscale_tile=self.upscale_tile or self.model.preset.upscale_tile,
        )

    @staticmethod
    def _finished(job_id: str, result: OpResult) -> Finished:
        return Finished(
            job_id=job_id,
            images=tuple(result.images),
            seeds=tuple(result.seeds),
            grid=make_grid(result.images),
            timings=result.timings,
            texts=tuple(result.texts),
            scores=tuple(result.scores),
        )

    @staticmethod
    def _failure(job_id: str, exc: Exception) -> Failed:
        """How a job that raised ends: cancelled, refused (a reason for the user), or an error."""
        if isinstance(exc, Cancelled):
            log.info("job %s cancelled", job_id)
            return Failed(job_id=job_id, reason=CANCELLED, retryable=False)
        if isinstance(exc, ValueError):  # ModelLoadError is one too
            log.info("job %s refused: %s", job_id, exc)
            return Failed(job_id=job_id, reason=str(exc), retryable=False)
        if isinstance(exc, torch.OutOfMemoryError):
            log.error("job %s ran out of memory", job_id, exc_info=exc)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            return Failed(
                job_id=job_id, reason="the GPU ran out of memory; try a smaller size", retryable=True
            )
        # A bug or a driver error: report it, keep the engine serving.
        log.error("job %s failed", job_id, exc_info=exc)
        return Failed(job_id=job_id, reason=f"engine error: {type(exc).__name__}: {exc}", retryable=False)

    def _captioner(self) -> Captioner:
        """The operator's captioning model, loaded once on first use (most engines never describe)."""
        if self.captioner is None:
            if not self.config.captioner:
                raise ValueError(
                    "/describe needs a captioning model: the operator sets IMAGINE_CAPTIONER to a "
                    "local BLIP (or other transformers image-to-text) folder"
                )
            assert self.model is not None
            self.captioner = Captioner.load(self.config.captioner, self.model.device)
        return self.captioner

    def _reference_adapter(self) -> ReferenceAdapter:
        """The operator's IP-Adapter, read once on first use; a ValueError naming the setting."""
        if self.reference_adapter is None:
            if not self.config.ip_adapter:
                raise ValueError(NO_ADAPTER)
            assert self.model is not None
            self.reference_adapter = ReferenceAdapter.load(self.config.ip_adapter, self.model)
        return self.reference_adapter

    def _dispatch(self, ctx: OpContext, request: EngineRequest) -> OpResult:
        if isinstance(request, ImagineRequest):
            return run_imagine(ctx, request, self._reference_adapter() if request.references else None)
        if isinstance(request, VaryRequest):
            return run_vary(ctx, request)
        if isinstance(request, UpscaleRequest):
            return run_upscale(ctx, request)
        if isinstance(request, OutpaintRequest):
            return run_outpaint(ctx, request)
        if isinstance(request, BlendRequest):
            return run_blend(ctx, request)
        if isinstance(request, ShortenRequest):
            return run_shorten(ctx.model, request)
        if isinstance(request, DescribeRequest):
            return run_describe(self._captioner(), request, self.config.max_pixels)
        if isinstance(request, InpaintRequest):
            return run_inpaint(ctx, request)
        raise ValueError(f"unknown request type {type(request).__name__}")
