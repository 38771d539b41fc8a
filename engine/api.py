"""The engine's public face: typed requests, typed events, and the client protocol.

These are the only things that cross the boundary between the bot and the engine process (a pipe
for the local engine, Ray for the scaled-out one), so they are plain frozen dataclasses of
builtins and picklable. Importing this module must never import torch or diffusers: the bot
process stays light and starts fast.
"""

from __future__ import annotations

import enum
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

# ---------------------------------------------------------------------------------------------
# Images that cross the process boundary
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageData:
    """A picture as raw 8-bit RGB rows.

    Raw pixels rather than PNG: encoding is the store's job (it happens once, off the GPU's
    critical path), and raw bytes cost nothing to build in the engine.
    """

    width: int
    height: int
    rgb: bytes

    def __post_init__(self) -> None:
        if len(self.rgb) != self.width * self.height * 3:
            raise ValueError(
                f"ImageData of {self.width}x{self.height} needs {self.width * self.height * 3} bytes, "
                f"got {len(self.rgb)}"
            )

    def to_pil(self):  # -> PIL.Image.Image (Pillow is imported lazily on purpose)
        from PIL import Image

        return Image.frombytes("RGB", (self.width, self.height), self.rgb)

    @classmethod
    def from_pil(cls, image) -> ImageData:  # image: PIL.Image.Image
        rgb = image.convert("RGB")
        return cls(width=rgb.width, height=rgb.height, rgb=rgb.tobytes())

    @classmethod
    def from_file(cls, path: str) -> ImageData:
        from PIL import Image  # lazily, as in `to_pil`: the contract module imports only the stdlib

        with Image.open(path) as image:
            return cls.from_pil(image)


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptSpec:
    """What to draw: `::` segments with their raw weights, plus `--no` terms.

    Each segment becomes its own conditioning term (composable guidance); negative weights and
    `negative` push away from a term.
    """

    segments: tuple[tuple[str, float], ...]
    negative: tuple[str, ...] = ()

    @classmethod
    def single(cls, text: str, negative: tuple[str, ...] = ()) -> PromptSpec:
        return cls(segments=((text, 1.0),), negative=negative)


ReferenceKind = Literal["style", "omni"]


@dataclass(frozen=True)
class Reference:
    """A picture the result should follow (`--sref` style, `--oref` omni), through the IP-Adapter.

    `weight` is Midjourney's `--sw` / `--ow` (0-1000, default 100); the engine turns it into the
    adapter's scale.
    """

    image: ImageData
    weight: float = 100.0
    kind: ReferenceKind = "style"


@dataclass(frozen=True)
class LoraChoice:
    """A LoRA style the operator installed (`EngineConfig.lora_dir`), by name, at a weight."""

    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class ImagineRequest:
    """Four images from one prompt (a 2x2 grid); `seeds` has one seed per cell."""

    job_id: str
    prompt: PromptSpec
    seeds: tuple[int, ...]
    width: int
    height: int
    steps: int | None = None  # None: the model preset's default
    guidance: float | None = None  # None: the preset's default
    quality: float = 1.0  # --quality: multiplies the step budget
    chaos: int = 0  # --chaos 0-100
    stylize: int = 100  # --stylize 0-1000
    style: str | None = None  # --style; "raw" drops the house style
    weird: int = 0  # --weird 0-3000
    stop: int = 100  # --stop 10-100: percent of denoising to run
    tile: bool = False  # --tile
    init_image: ImageData | None = None  # image prompt
    image_weight: float | None = None  # --iw 0-3
    lora: LoraChoice | None = None  # --lora NAME[:W]
    references: tuple[Reference, ...] = ()  # --sref / --oref pictures (needs EngineConfig.ip_adapter)
    kind: Literal["imagine"] = "imagine"


VaryStrength = Literal["subtle", "strong"]


@dataclass(frozen=True)
class VaryRequest:
    """Four new images close to `source`; the strength is the preset's Subtle/Strong or explicit."""

    job_id: str
    source: ImageData
    prompt: PromptSpec
    seeds: tuple[int, ...]
    strength: VaryStrength | float = "subtle"
    steps: int | None = None
    quality: float = 1.0  # --quality: multiplies the step budget
    guidance: float | None = None
    stylize: int = 100
    style: str | None = None
    tile: bool = False
    lora: LoraChoice | None = None
    kind: Literal["vary"] = "vary"


@dataclass(frozen=True)
class UpscaleRequest:
    """The source at `factor` times its size: resize, then a low-strength refine (tiled when large)."""

    job_id: str
    source: ImageData
    prompt: PromptSpec
    seed: int
    mode: Literal["subtle", "creative"] = "subtle"
    factor: float = 2.0
    steps: int | None = None
    quality: float = 1.0  # --quality: multiplies the step budget
    kind: Literal["upscale"] = "upscale"


PanDirection = Literal["left", "right", "up", "down"]


@dataclass(frozen=True)
class OutpaintRequest:
    """Zoom Out, Pan and Make Square: a bigger or shifted canvas, the new area inpainted.

    Exactly one of `zoom`, `pan` and `square` is set. Zoom keeps the output resolution (the
    source shrinks into the centre); `aspect` lets a custom zoom change the aspect ratio. Pan
    grows the canvas by half in one direction. Square extends the short side.
    """

    job_id: str
    source: ImageData
    prompt: PromptSpec
    seeds: tuple[int, ...]
    zoom: float | None = None  # 1.0-2.0
    aspect: tuple[int, int] | None = None  # only with zoom
    pan: PanDirection | None = None
    square: bool = False
    steps: int | None = None
    quality: float = 1.0  # --quality: multiplies the step budget
    guidance: float | None = None
    lora: LoraChoice | None = None
    kind: Literal["outpaint"] = "outpaint"


BLEND_MIN_IMAGES = 2
BLEND_MAX_IMAGES = 5


@dataclass(frozen=True)
class BlendRequest:
    """Four images that blend 2-5 sources (/blend), at `width` x `height`.

    The engine blends in latent space: each source is covered to the output size and encoded by
    the VAE, the latents are averaged (renormalised to the sources' statistics, so the mean does
    not fade to grey) and a strong img2img pass with the optional prompt draws the result.
    """

    job_id: str
    sources: tuple[ImageData, ...]
    prompt: PromptSpec
    seeds: tuple[int, ...]
    width: int
    height: int
    steps: int | None = None
    quality: float = 1.0
    kind: Literal["blend"] = "blend"


@dataclass(frozen=True)
class ShortenRequest:
    """/shorten: how much each word moves the text encoder's embedding of the prompt.

    `words` is the prompt's description split on whitespace, in order; the answer is a `Finished`
    without images whose `scores` has one number per word (the cosine distance between the
    embedding of the whole prompt and that of the prompt without the word).
    """

    job_id: str
    words: tuple[str, ...]
    kind: Literal["shorten"] = "shorten"


@dataclass(frozen=True)
class DescribeRequest:
    """/describe: `count` distinct prompts for `image`, from the operator's captioning model.

    The answer is a `Finished` without images whose `texts` holds the prompts.
    """

    job_id: str
    image: ImageData
    count: int = 4
    kind: Literal["describe"] = "describe"


@dataclass(frozen=True)
class InpaintRequest:
    """Vary (Region): new content inside `mask` (white where it goes), the rest of `source` kept.

    `mask` has the source's size; any pixel brighter than mid-grey is part of the region. The
    pixels outside it come back exactly as they were in the source.
    """

    job_id: str
    source: ImageData
    mask: ImageData
    prompt: PromptSpec
    seeds: tuple[int, ...]
    strength: float | None = None  # None: the preset's outpaint strength (1.0: the region redrawn)
    steps: int | None = None
    quality: float = 1.0
    guidance: float | None = None
    kind: Literal["inpaint"] = "inpaint"


EngineRequest = (
    ImagineRequest
    | VaryRequest
    | UpscaleRequest
    | OutpaintRequest
    | InpaintRequest
    | BlendRequest
    | ShortenRequest
    | DescribeRequest
)


# ---------------------------------------------------------------------------------------------
# Events
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    job_id: str


@dataclass(frozen=True)
class Progress:
    """One denoising step done; `preview` is a small image made without a full VAE decode."""

    job_id: str
    step: int
    total: int
    preview: ImageData | None = None


@dataclass(frozen=True)
class Finished:
    """The job's images, one seed per image, the 2x2 grid for four-image jobs, and phase timings."""

    job_id: str
    images: tuple[ImageData, ...]
    seeds: tuple[int, ...]
    grid: ImageData | None = None
    timings: dict[str, float] = field(default_factory=dict)
    # The answers of the operations that make no picture: /describe's prompts, /shorten's
    # one score per word.
    texts: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()


@dataclass(frozen=True)
class Failed:
    """The job did not finish. `retryable` is true when trying again may succeed (a crashed worker)."""

    job_id: str
    reason: str
    retryable: bool = False


EngineEvent = Started | Progress | Finished | Failed


# ---------------------------------------------------------------------------------------------
# Configuration and model facts
# ---------------------------------------------------------------------------------------------


class Family(enum.StrEnum):
    SD = "sd"  # SD 1.x / 2.x: one text encoder
    SDXL = "sdxl"  # two text encoders, added conditioning


# The model that runs when nothing is configured: the project's own small model, shipped in the
# package, which draws what it is asked without a download (engine/presets.py, docs/toy-model.md).
DEFAULT_MODEL = "toy"


DTYPES = ("auto", "float32", "bfloat16", "float16")
COMPILE_MODES = ("off", "regional", "full")
FP8_MODES = ("off", "weights", "matmul")


@dataclass(frozen=True)
class EngineConfig:
    """What the engine loads and where. Built by the bot from its settings."""

    # a preset name, a Hub repo id, a local diffusers folder, or a .safetensors file
    model: str = DEFAULT_MODEL
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    inpaint_model: str | None = None  # a dedicated inpainting checkpoint; None: the base model
    upscaler_model: str | None = None  # a dedicated upscaler; None: the base model refines
    # For a single-file checkpoint whose component configs cannot be inferred offline: a diffusers
    # folder or repo id of the same architecture (the bot fills it from IMAGINE_MODEL_CONFIG).
    model_config: str | None = None
    lora_dir: str | None = None  # a folder of LoRA `.safetensors` files members may pick by name
    # A captioning model for /describe (a local transformers folder of BLIP, BLIP-2, Florence...);
    # None: /describe is refused with a sentence naming IMAGINE_CAPTIONER.
    captioner: str | None = None
    # IP-Adapter weights for --sref / --oref: a folder holding one `ip-adapter*.safetensors` (or
    # `.bin`) and its CLIP image encoder in `image_encoder/` (the layout of h94/IP-Adapter's
    # `models/` folder). None: such prompts are refused with a sentence naming IMAGINE_IP_ADAPTER.
    ip_adapter: str | None = None
    max_pixels: int = 2048 * 2048  # the largest output the engine accepts (pan and upscale check it)
    heartbeat_s: float = 2.0  # the worker's heartbeat interval
    hang_timeout_s: float = 120.0  # no heartbeat for this long: the worker is hung, restart it
    warmup: bool = True
    # The most imagine or vary jobs of one size that share one denoising loop (one UNet call per step for
    # all their cells); 0 picks for the device: 4 on a GPU, 1 (no batching) on a CPU.
    batch_jobs: int = 0
    # Speed paths (engine/speed.py; the README's "Speed" says which to turn on for a GPU). Every one
    # that changes pixels on the CPU is off by default.
    dtype: str = "auto"  # auto (bf16 on CUDA, fp32 on the CPU), float32, bfloat16, float16
    channels_last: bool | None = None  # None: on for CUDA, off on the CPU
    fuse_qkv: bool = False  # one fused q/k/v projection per attention (diffusers' fuse_qkv_projections)
    compile: str = "off"  # off, regional (each repeated block type once), full (the whole UNet)
    compile_backend: str = "inductor"  # torch.compile's backend; tests use "eager" to count graphs fast
    compile_cache_dir: str | None = None  # inductor's on-disk code cache (TORCHINDUCTOR_CACHE_DIR)
    cuda_graphs: bool = False  # replay each compiled shape as a CUDA graph (needs compile; CUDA only)
    fp8: str = "off"  # off, weights (float8 storage), matmul (float8 weights and activations)

    def __post_init__(self) -> None:
        # Code that builds an EngineConfig directly (benchmarks, tests) gets the same clear
        # refusal as the bot's settings, naming the field and what it accepts.
        for name, allowed in (("dtype", DTYPES), ("compile", COMPILE_MODES), ("fp8", FP8_MODES)):
            value = getattr(self, name)
            if value not in allowed:
                choices = ", ".join(allowed)
                raise ValueError(f"EngineConfig.{name}={value!r} is not valid; use one of {choices}")
        if self.cuda_graphs and self.compile == "off":
            raise ValueError(
                "EngineConfig.cuda_graphs needs compile='regional' or 'full': the graphs are recorded "
                "from the compiled UNet"
            )

    def jobs_per_batch(self, device: str) -> int:
        """`batch_jobs`, or the device's default when it is 0 (auto)."""
        if self.batch_jobs > 0:
            return self.batch_jobs
        return 4 if device.startswith("cuda") else 1


@dataclass(frozen=True)
class ModelInfo:
    """Facts about the loaded model that the front ends need (sizes for `--ar`, the mode name)."""

    name: str
    family: Family
    native_width: int
    native_height: int
    size_step: int
    default_steps: int
    default_guidance: float
    device: str
    # The words a closed-vocabulary model reads (the toy model's world); empty for the open
    # vocabularies of real checkpoints, where every word means something to the text encoder.
    vocabulary: tuple[str, ...] = ()
    # The speed paths in use (e.g. "bfloat16", "channels-last", "compile:regional") and the
    # seconds the start-up warm-up took (compiling every aspect bucket when compile is on).
    speed: tuple[str, ...] = ()
    warmup_s: float | None = None
    loras: tuple[str, ...] = ()  # the LoRA styles installed (`--lora NAME`), by name
    references: bool = False  # an IP-Adapter is configured: --sref / --oref work


# ---------------------------------------------------------------------------------------------
# Sizes: what `--ar` asks of a model, and the shapes the engine warms up
# ---------------------------------------------------------------------------------------------

# The aspect ratios most prompts use (Midjourney's common `--ar` values). The engine compiles and
# warms up the model at the size each one gives, so those jobs never pay for a compilation.
COMMON_ASPECTS: tuple[tuple[int, int], ...] = ((1, 1), (16, 9), (9, 16), (3, 2), (2, 3), (4, 5), (5, 4))


def dimensions_for(
    aspect: tuple[int, int], native_width: int, native_height: int, step: int
) -> tuple[int, int]:
    """Width and height for `--ar`: multiples of `step`, near the model's native pixel area.

    Models draw best near the pixel count they were trained at, and their latents need sides in
    multiples of `step` (64 for the SD families), so the exact ratio is rarely reachable. Every
    nearby multiple is scored by how far its ratio is from the request plus half how far its area
    is from native (both on a log scale); the ratio dominates, the area keeps it from drifting.
    At 512x512 and step 64, 16:9 gives 704x384 (3% off); at 1024x1024, 1344x768.
    """
    aspect_w, aspect_h = aspect
    if aspect_w <= 0 or aspect_h <= 0:
        raise ValueError(f"aspect sides must be positive, got {aspect_w}:{aspect_h}")
    if native_width <= 0 or native_height <= 0 or step <= 0:
        raise ValueError(
            f"native size and step must be positive, got {native_width}x{native_height} step {step}"
        )
    ratio = aspect_w / aspect_h
    area = native_width * native_height
    ideal_height = math.sqrt(area / ratio) / step
    best: tuple[float, int, int, int] | None = None
    for height_steps in range(max(1, math.floor(ideal_height / 2)), math.ceil(ideal_height * 2) + 1):
        height = height_steps * step
        for target in (height * ratio / step, area / height / step):
            for width_steps in {max(1, math.floor(target)), max(1, math.ceil(target))}:
                width = width_steps * step
                cost = abs(math.log(width / height / ratio)) + 0.5 * abs(math.log(width * height / area))
                candidate = (round(cost, 12), width * height, width, height)
                if best is None or candidate < best:
                    best = candidate
    assert best is not None
    return best[2], best[3]


def aspect_buckets(native_width: int, native_height: int, step: int) -> list[tuple[int, int]]:
    """The distinct (width, height) sizes of `COMMON_ASPECTS` for a model, square first."""
    sizes = [dimensions_for(a, native_width, native_height, step) for a in COMMON_ASPECTS]
    return list(dict.fromkeys(sizes))


# ---------------------------------------------------------------------------------------------
# The client protocol
# ---------------------------------------------------------------------------------------------


# The reason of the `Failed` that ends a cancelled job, whichever engine ran it: the dispatcher
# tells "the user cancelled" from a real failure by it.
CANCELLED = "cancelled"


class EngineError(RuntimeError):
    """The engine cannot take the request at all (closed, not started)."""


@runtime_checkable
class EngineClient(Protocol):
    """How the dispatcher talks to an engine, local or remote.

    `submit` returns the request's events as they happen: `Started`, any number of `Progress`,
    then exactly one `Finished` or `Failed`, after which the iterator ends.
    """

    @property
    def slots(self) -> int:
        """How many jobs this engine runs at once; the dispatcher keeps that many in flight."""
        ...

    async def start(self) -> ModelInfo:
        """Load the model (idempotent) and return what the front ends need to know about it."""
        ...

    def submit(self, request: EngineRequest) -> AsyncIterator[EngineEvent]: ...

    async def cancel(self, job_id: str) -> None:
        """Ask the job to stop; it ends with `Failed(reason=CANCELLED)` within one step."""
        ...

    async def close(self) -> None: ...
