"""What the engine loads (`EngineConfig`) and what it tells the front ends about the model (`ModelInfo`).

Part of the engine's contract, re-exported by `engine.api`: import it from there. Like the rest of
the contract it imports only the standard library, so the bot process stays light.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
