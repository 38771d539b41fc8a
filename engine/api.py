"""The engine's public face: typed requests, typed events, and the client protocol.

These are the only things that cross the boundary between the bot and the engine process (a pipe
for the local engine, Ray for the scaled-out one), so they are plain frozen dataclasses of
builtins and picklable. Importing this module must never import torch or diffusers: the bot
process stays light and starts fast.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

# The configuration and the size arithmetic have modules of their own; they are part of this
# contract all the same, so they are re-exported here (`X as X`, one name a line) and imported
# from `engine.api`.
from engine.config import COMPILE_MODES as COMPILE_MODES
from engine.config import DEFAULT_MODEL as DEFAULT_MODEL
from engine.config import DTYPES as DTYPES
from engine.config import FP8_MODES as FP8_MODES
from engine.config import EngineConfig as EngineConfig
from engine.config import Family as Family
from engine.config import ModelInfo as ModelInfo
from engine.sizes import COMMON_ASPECTS as COMMON_ASPECTS
from engine.sizes import aspect_buckets as aspect_buckets
from engine.sizes import dimensions_for as dimensions_for

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
