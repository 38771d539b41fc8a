"""Loading models: one resident weight set per model, and the derived pipelines that share it.

A model comes from a preset name, a Hugging Face repo id, a local diffusers folder (as written by
`save_pretrained`), or a single `.safetensors` checkpoint. The presets `tiny` and `tiny-xl` are
built here from code with a fixed seed: small random-weight pipelines of each family, tokenizer
included, so tests and demos run anywhere in seconds without a download.

img2img and inpainting pipelines are derived with `from_pipe`: they hold the very same UNet, VAE
and text encoders, never a second copy.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from diffusers import StableDiffusionUpscalePipeline
from diffusers.models.attention_processor import AttnProcessor2_0
from safetensors import safe_open

from engine.quiet import quiet_libraries

with quiet_libraries():  # importing the pipelines is where transformers' torchvision advice fires
    from diffusers import (
        AutoencoderKL,
        DiffusionPipeline,
        EulerDiscreteScheduler,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from engine.api import Family
from engine.presets import PRESETS, Preset, get_preset, preset_for_family

log = logging.getLogger(__name__)

TINY_SEED = 20240229  # the tiny models' weights come from this seed; change it and every test image changes


class ModelLoadError(ValueError):
    """The model named in the configuration cannot be loaded; the message says why and what to try."""


# ---------------------------------------------------------------------------------------------
# Device and precision
# ---------------------------------------------------------------------------------------------


def resolve_device(device: str) -> torch.device:
    """`auto` picks the first CUDA GPU when there is one, else the CPU."""
    name = (device or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(
            f"IMAGINE_DEVICE is {device!r} but no CUDA GPU is available; use 'cpu' or 'auto'"
        )
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ModelLoadError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N") from exc


def dtype_for(device: torch.device, setting: str = "auto") -> torch.dtype:
    """The engine's precision: `setting` (IMAGINE_DTYPE), or for `auto` bf16 on CUDA (no fp16 VAE
    overflow, no upcast round trips) and fp32 on the CPU (exact, fast enough)."""
    if setting != "auto":
        return getattr(torch, setting)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


# ---------------------------------------------------------------------------------------------
# The tiny random-weight models
# ---------------------------------------------------------------------------------------------


def _byte_symbols() -> list[str]:
    """The 256 printable stand-ins byte-level BPE uses for the bytes (printable ASCII/Latin-1 kept)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = 0
    symbols = []
    for b in range(256):
        if b in keep:
            symbols.append(chr(b))
        else:
            symbols.append(chr(256 + extra))
            extra += 1
    return symbols


def _tiny_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer whose vocabulary is every byte, as a word piece and as a word end.

    Without merges every word splits into characters: crude, but it is a real CLIP BPE tokenizer
    (padding, truncation to 77, start/end tokens), built without a download.
    """
    symbols = _byte_symbols()
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = 77
    return tokenizer


def _tiny_text_config(vocab_size: int, projection: int | None = None) -> CLIPTextConfig:
    return CLIPTextConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=projection or 32,
        bos_token_id=vocab_size - 2,
        eos_token_id=vocab_size - 1,
        pad_token_id=vocab_size - 1,
        hidden_act="gelu",
    )


def _tiny_vae(blocks: int = 4) -> AutoencoderKL:
    """A small VAE with the real SD layout (four blocks, 8x downsampling, 4 latent channels) whose
    weights are set by hand instead of drawn at random.

    A random VAE decodes any latent to the same high-frequency texture and forgets its input, so
    no test could tell "close to the source" from "unrelated". This one is a fixed, nearly
    invertible map: the encoder average-pools each colour channel 8x (latent = colour / its RMS,
    the fourth channel the mean of the three), the decoder upsamples smoothly back. Every
    residual branch is zeroed, so the resnets and attention pass their input through. The
    GroupNorms carry each value as a (+x, -x) channel pair, whose group mean is 0 and whose
    silu(x) - silu(-x) is exactly x, so only a per-image contrast scale is lost.
    """
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=(8,) * blocks,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=128,
        scaling_factor=1.0,  # the latents already have about unit variance
    )
    with torch.no_grad():
        for module in vae.modules():
            if isinstance(module, torch.nn.Conv2d | torch.nn.Linear):
                module.weight.zero_()
                if module.bias is not None:
                    module.bias.zero_()
        pool = torch.zeros(3, 3)
        pool[:2, :2] = 0.25  # with the encoder's (0, 1, 0, 1) padding and stride 2: a 2x2 mean
        smooth = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
        for c in range(3):
            vae.encoder.conv_in.weight[2 * c, c, 1, 1] = 1.0
            vae.encoder.conv_in.weight[2 * c + 1, c, 1, 1] = -1.0
        for block in vae.encoder.down_blocks:
            for down in block.downsamplers or []:
                for ch in range(8):
                    down.conv.weight[ch, ch] = pool
        for c in range(3):  # the posterior mean: colour c, and channel 3 the mean of the three
            vae.encoder.conv_out.weight[c, 2 * c, 0, 0] = 1.0
            vae.encoder.conv_out.weight[c, 2 * c + 1, 0, 0] = -1.0
            vae.encoder.conv_out.weight[3, 2 * c, 0, 0] = 1 / 3
            vae.encoder.conv_out.weight[3, 2 * c + 1, 0, 0] = -1 / 3
        vae.encoder.conv_out.bias[4:] = -10.0  # a tiny posterior variance
        for ch in range(8):
            vae.quant_conv.weight[ch, ch, 0, 0] = 1.0
        for ch in range(4):
            vae.post_quant_conv.weight[ch, ch, 0, 0] = 1.0
            vae.decoder.conv_in.weight[2 * ch, ch, 1, 1] = 1.0
            vae.decoder.conv_in.weight[2 * ch + 1, ch, 1, 1] = -1.0
        for block in vae.decoder.up_blocks:
            for up in block.upsamplers or []:
                for ch in range(8):
                    up.conv.weight[ch, ch] = smooth
        for c in range(3):
            vae.decoder.conv_out.weight[c, 2 * c, 1, 1] = 0.5
            vae.decoder.conv_out.weight[c, 2 * c + 1, 1, 1] = -0.5
            vae.decoder.conv_out.weight[c, 6, 1, 1] = 0.15  # a little of the mean channel in each colour
            vae.decoder.conv_out.weight[c, 7, 1, 1] = -0.15
    return vae


def _tiny_scheduler() -> EulerDiscreteScheduler:
    return EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        timestep_spacing="leading",
        steps_offset=1,
    )


# What the two tiny UNets share; each family adds its own conditioning on top.
_TINY_UNET: dict[str, Any] = dict(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    block_out_channels=(32, 64),
    layers_per_block=1,
    down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
    norm_num_groups=16,
)


def build_tiny(xl: bool = False) -> DiffusionPipeline:
    """Build `tiny` (SD 1.x family) or `tiny-xl` (SDXL family) from code, the same weights every time."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TINY_SEED)
        tokenizer = _tiny_tokenizer()
        vocab = len(tokenizer)
        if not xl:
            text_encoder = CLIPTextModel(_tiny_text_config(vocab))
            unet = UNet2DConditionModel(**_TINY_UNET, cross_attention_dim=32, attention_head_dim=8)
            vae = _tiny_vae()
            pipe = StableDiffusionPipeline(
                vae=vae,
                text_encoder=text_encoder,
                tokenizer=tokenizer,
                unet=unet,
                scheduler=_tiny_scheduler(),
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        else:
            text_encoder = CLIPTextModel(_tiny_text_config(vocab))
            text_encoder_2 = CLIPTextModelWithProjection(_tiny_text_config(vocab, projection=32))
            unet = UNet2DConditionModel(
                **_TINY_UNET,
                cross_attention_dim=64,  # both encoders' hidden states side by side
                attention_head_dim=(2, 4),
                use_linear_projection=True,
                addition_embed_type="text_time",
                addition_time_embed_dim=8,
                projection_class_embeddings_input_dim=8 * 6 + 32,  # six time ids + pooled text
                transformer_layers_per_block=(1, 1),
            )
            vae = _tiny_vae()
            pipe = StableDiffusionXLPipeline(
                vae=vae,
                text_encoder=text_encoder,
                text_encoder_2=text_encoder_2,
                tokenizer=tokenizer,
                tokenizer_2=_tiny_tokenizer(),
                unet=unet,
                scheduler=_tiny_scheduler(),
                force_zeros_for_empty_prompt=True,
            )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------------------------
# Full-size architectures with random weights (benchmarks without a download)
# ---------------------------------------------------------------------------------------------

_SD_VAE = {
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (128, 256, 512, 512),
    "layers_per_block": 2,
    "latent_channels": 4,
    "norm_num_groups": 32,
}
RANDOM_ARCHITECTURES: dict[str, dict[str, Any]] = {
    "sd15": {
        "unet": {
            "sample_size": 64,
            "block_out_channels": (320, 640, 1280, 1280),
            "layers_per_block": 2,
            "down_block_types": ("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            "up_block_types": ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
            "cross_attention_dim": 768,
            "attention_head_dim": 8,
        },
        "vae": {**_SD_VAE, "sample_size": 512, "scaling_factor": 0.18215},
        "text": [
            {"hidden_size": 768, "intermediate_size": 3072, "layers": 12, "heads": 12, "act": "quick_gelu"}
        ],
    },
    "sdxl": {
        "unet": {
            "sample_size": 128,
            "block_out_channels": (320, 640, 1280),
            "layers_per_block": 2,
            "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            "transformer_layers_per_block": (1, 2, 10),
            "attention_head_dim": (5, 10, 20),
            "cross_attention_dim": 2048,
            "use_linear_projection": True,
            "addition_embed_type": "text_time",
            "addition_time_embed_dim": 256,
            "projection_class_embeddings_input_dim": 2816,
        },
        "vae": {**_SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
        "text": [
            {"hidden_size": 768, "intermediate_size": 3072, "layers": 12, "heads": 12, "act": "quick_gelu"},
            {
                "hidden_size": 1280,
                "intermediate_size": 5120,
                "layers": 32,
                "heads": 20,
                "act": "gelu",
                "proj": 1280,
            },
        ],
    },
}


def build_random_weights(arch: str, device: torch.device) -> DiffusionPipeline:
    """SD 1.5 or SDXL at full size with random weights, initialised directly on `device`.

    The timings of a denoising step do not depend on the weights' values, so benchmarks of the
    real architectures need no download. (The tokenizer is the tiny byte tokenizer.)
    """
    if arch not in RANDOM_ARCHITECTURES:
        raise ModelLoadError(f"unknown architecture {arch!r}: choose {', '.join(RANDOM_ARCHITECTURES)}")
    spec = RANDOM_ARCHITECTURES[arch]
    tokenizer = _tiny_tokenizer()
    vocab = len(tokenizer)
    encoders = []
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(TINY_SEED)
        for text in spec["text"]:
            config = CLIPTextConfig(
                vocab_size=vocab,
                hidden_size=text["hidden_size"],
                intermediate_size=text["intermediate_size"],
                num_hidden_layers=text["layers"],
                num_attention_heads=text["heads"],
                max_position_embeddings=77,
                projection_dim=text.get("proj", 768),
                hidden_act=text["act"],
                bos_token_id=vocab - 2,
                eos_token_id=vocab - 1,
                pad_token_id=vocab - 1,
            )
            encoders.append(CLIPTextModelWithProjection(config) if "proj" in text else CLIPTextModel(config))
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**spec["vae"])
    scheduler = _tiny_scheduler()
    if arch == "sdxl":
        pipe = StableDiffusionXLPipeline(
            vae=vae,
            text_encoder=encoders[0],
            text_encoder_2=encoders[1],
            tokenizer=tokenizer,
            tokenizer_2=_tiny_tokenizer(),
            unet=unet,
            scheduler=scheduler,
        )
    else:
        pipe = StableDiffusionPipeline(
            vae=vae,
            text_encoder=encoders[0],
            tokenizer=tokenizer,
            unet=unet,
            scheduler=scheduler,
            safety_checker=None,
            feature_extractor=None,
            requires_safety_checker=False,
        )
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """One resident weight set and the pipelines derived from it."""

    name: str
    preset: Preset
    family: Family
    pipe: DiffusionPipeline
    device: torch.device
    dtype: torch.dtype
    inpaint_override: DiffusionPipeline | None = None  # an operator-configured inpainting model
    upscaler: DiffusionPipeline | None = None  # an operator-configured upscaler (SD x4 upscaler)
    _derived: dict[str, DiffusionPipeline] = field(default_factory=dict)
    speed: tuple[str, ...] = ()  # the speed paths applied (engine/speed.py)
    cuda_graphs: bool = False  # the UNet replays CUDA graphs: each step must say when it begins
    # Encodings of texts that never change for this model (the unconditional input, the house
    # style), made once instead of on every job (see engine/ops/guidance.py).
    fixed_encodings: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = field(default_factory=dict)

    @property
    def unet(self) -> UNet2DConditionModel:
        return self.pipe.unet

    @property
    def vae(self) -> AutoencoderKL:
        return self.pipe.vae

    @property
    def vae_scale(self) -> int:
        return vae_scale(self.pipe)

    def img2img(self) -> DiffusionPipeline:
        """The img2img pipeline over the same components (built once, shares every weight)."""
        if "img2img" not in self._derived:
            cls = (
                StableDiffusionXLImg2ImgPipeline
                if self.family is Family.SDXL
                else StableDiffusionImg2ImgPipeline
            )
            self._derived["img2img"] = _derive(cls, self.pipe)
        return self._derived["img2img"]

    def inpaint(self) -> DiffusionPipeline:
        """The inpainting pipeline: the operator's dedicated model, or the base model's components."""
        if self.inpaint_override is not None:
            return self.inpaint_override
        if "inpaint" not in self._derived:
            cls = (
                StableDiffusionXLInpaintPipeline
                if self.family is Family.SDXL
                else StableDiffusionInpaintPipeline
            )
            self._derived["inpaint"] = _derive(cls, self.pipe)
        return self._derived["inpaint"]

    def for_inpainting(self) -> LoadedModel:
        """The model outpainting runs on: the operator's inpainting model when configured, else this one."""
        if self.inpaint_override is None:
            return self
        pipe = self.inpaint_override
        return LoadedModel(
            name=f"{self.name} (inpainting)",
            preset=self.preset,
            family=_family_of(pipe),
            pipe=pipe,
            device=self.device,
            dtype=self.dtype,
        )

    def pipelines(self) -> list[DiffusionPipeline]:
        """Every pipeline this model holds (for the shared-weights check)."""
        return [self.pipe, *self._derived.values()]


def _derive(cls: type[DiffusionPipeline], pipe: DiffusionPipeline) -> DiffusionPipeline:
    kwargs: dict[str, Any] = {}
    if "requires_aesthetics_score" in cls.__init__.__code__.co_varnames:
        kwargs["requires_aesthetics_score"] = False
    with quiet_libraries():  # from_pipe re-casts the shared modules and says so, harmlessly
        derived = cls.from_pipe(pipe, **kwargs)
    derived.set_progress_bar_config(disable=True)
    return derived


def _family_of(pipe: DiffusionPipeline) -> Family:
    return Family.SDXL if getattr(pipe, "text_encoder_2", None) is not None else Family.SD


PACKAGE_DIR = Path(__file__).resolve().parent


def packaged_model_dir(preset: Preset) -> Path:
    """Where a `package:` preset's weights live inside the installed engine package."""
    return PACKAGE_DIR / preset.source.removeprefix("package:")


def _load_folder(path: Path, dtype: torch.dtype) -> DiffusionPipeline:
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelLoadError(f"{path} is not a diffusers model folder: it has no model_index.json")
    try:
        return DiffusionPipeline.from_pretrained(str(path), dtype=dtype, safety_checker=None)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        # Truncated safetensors, a missing component folder, a config that is not JSON: one
        # sentence that names the folder, with the library's own words after it for the operator.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"the model folder {path} is damaged or incomplete and could not be loaded ({first})"
        ) from exc


def _load_packaged(preset: Preset, dtype: torch.dtype) -> DiffusionPipeline:
    path = packaged_model_dir(preset)
    if not (path / "model_index.json").is_file():
        raise ModelLoadError(
            f"the {preset.name} model's weights are missing from {path}: reinstall the package, or "
            "rebuild them with `python -m engine.training`"
        )
    return _load_folder(path, dtype)


def _is_sdxl_checkpoint(path: Path) -> bool:

    with safe_open(str(path), framework="pt") as f:
        return any(k.startswith("conditioner.embedders.1") for k in f.keys())  # noqa: SIM118


def _load_single_file(path: Path, dtype: torch.dtype, config: str | None) -> DiffusionPipeline:
    """A single original-format checkpoint through diffusers' `from_single_file`.

    `config` (a local diffusers folder or repo id with the component configs) lets it load
    offline; without it diffusers fetches the matching config from the Hub.
    """
    cls = StableDiffusionXLPipeline if _is_sdxl_checkpoint(path) else StableDiffusionPipeline
    kwargs: dict[str, Any] = {"dtype": dtype}
    if config:
        kwargs["config"] = config
    if cls is StableDiffusionPipeline:
        kwargs["safety_checker"] = None
    try:
        return cls.from_single_file(str(path), **kwargs)
    except Exception as exc:  # diffusers raises a zoo of types here; keep the cause, say what to try
        raise ModelLoadError(
            f"could not load the checkpoint {path.name}: {exc}. A single-file checkpoint needs its "
            "component configs: set IMAGINE_MODEL_CONFIG (EngineConfig.model_config) to a diffusers "
            "folder or repo id of the same architecture, or convert the checkpoint to a diffusers folder"
        ) from exc


def _load_hub(repo_id: str, dtype: torch.dtype) -> DiffusionPipeline:
    try:
        return DiffusionPipeline.from_pretrained(repo_id, dtype=dtype, safety_checker=None)
    except Exception as exc:
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        hint = (
            " The Hub is switched off here (HF_HUB_OFFLINE=1): download the model first, or point "
            "IMAGINE_MODEL at a local folder or .safetensors file."
            if offline
            else " Check the repo id, your network, and HF_TOKEN for gated models."
        )
        raise ModelLoadError(
            f"could not load model {repo_id!r} from the Hugging Face Hub: {exc}.{hint}"
        ) from exc


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))


def load_pipeline(
    model: str,
    device: torch.device,
    dtype: torch.dtype,
    config: str | None = None,
    inpainting: bool = False,
) -> tuple[DiffusionPipeline, Preset]:
    """Resolve `model` (preset, folder, checkpoint file, Hub id) into a pipeline and its preset."""
    name = model.strip()
    preset = get_preset(name)
    if name.startswith("random:"):
        arch = name.removeprefix("random:")
        pipe = build_random_weights(arch, device)
        base = get_preset(arch)
        return pipe, dataclasses.replace(base, name=name, source=name)
    if preset is not None and preset.builtin:
        pipe = build_tiny(xl=preset.family is Family.SDXL)
    elif preset is not None and preset.packaged:
        pipe = _load_packaged(preset, dtype)
    elif preset is not None:
        pipe = _load_hub(preset.source, dtype)
    else:
        path = Path(name).expanduser()
        if path.is_dir():
            pipe = _load_folder(path, dtype)
        elif path.is_file() and path.suffix in (".safetensors", ".ckpt"):
            pipe = _load_single_file(path, dtype, config)
        elif path.suffix in (".safetensors", ".ckpt") or name.startswith((".", "/", "~")):
            raise ModelLoadError(f"model file or folder {name!r} does not exist")
        elif _looks_like_repo_id(name):
            pipe = _load_hub(name, dtype)
        else:
            raise ModelLoadError(
                f"unknown model {name!r}: not a preset ({', '.join(PRESETS)}), not an existing folder "
                "or .safetensors file, and not a Hugging Face repo id (owner/name)"
            )
        family = _family_of(pipe)
        native = pipe.unet.config.sample_size * vae_scale(pipe)
        preset = preset_for_family(family, name, native=native)
        if native != PRESETS["sdxl" if family is Family.SDXL else "sd15"].native_width:
            # Not a standard-size checkpoint (a small model of our own, say): its size step is
            # what its architecture can make, not the family's 64.
            preset = dataclasses.replace(preset, size_step=size_multiple(pipe))
    allowed: tuple[type, ...] = (StableDiffusionPipeline, StableDiffusionXLPipeline)
    if inpainting:
        allowed += (StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline)
    if not isinstance(pipe, allowed):
        raise ModelLoadError(
            f"{name!r} is a {type(pipe).__name__}; the engine runs Stable Diffusion 1.x/2.x and SDXL "
            "text-to-image models"
        )
    if type(pipe.scheduler).__name__ == "PNDMScheduler":
        # SD 1.x ships PNDM, which keeps no estimate of the clean image (needed for previews and
        # --stop) and handles img2img start points poorly; Euler on the same noise schedule does both.
        pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe, preset


def closed_vocabulary(pipe: DiffusionPipeline) -> tuple[str, ...]:
    """The whole words a small word-level tokenizer holds (the toy model's); () for any other.

    Real CLIP tokenizers (49k tokens) read every word as sub-word pieces, so no word is unknown to
    them; the toy tokenizer has one token per word it learned and splits anything else into
    letters, which is how a front end can tell a user which words the model does not know.
    """
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None or len(tokenizer) > 5000:
        return ()
    words = {t[:-4] for t in tokenizer.get_vocab() if t.endswith("</w>") and len(t) > 5 and t[:-4].isalpha()}
    return tuple(sorted(words))


def vae_scale(pipe: DiffusionPipeline) -> int:
    """Pixels per latent cell on a side (diffusers' `vae_scale_factor`, read from any pipeline's VAE)."""
    return 2 ** (len(pipe.vae.config.block_out_channels) - 1)


def size_multiple(pipe: DiffusionPipeline) -> int:
    """The pixel multiple the model can make exactly: VAE downsampling times the UNet's."""
    return vae_scale(pipe) * 2 ** (len(pipe.unet.config.down_block_types) - 1)


def load_upscaler(name: str, device: torch.device, dtype: torch.dtype) -> DiffusionPipeline:
    """A dedicated diffusion upscaler (diffusers' `StableDiffusionUpscalePipeline`, the SD x4 upscaler)."""

    path = Path(name).expanduser()
    if path.is_dir():
        pipe = _load_folder(path, dtype)
    elif _looks_like_repo_id(name):
        pipe = _load_hub(name, dtype)
    else:
        raise ModelLoadError(
            f"upscaler model {name!r} is neither a diffusers folder nor a Hugging Face repo id"
        )
    if not isinstance(pipe, StableDiffusionUpscalePipeline):
        raise ModelLoadError(
            f"upscaler model {name!r} is a {type(pipe).__name__}; a StableDiffusionUpscalePipeline is needed "
            "(e.g. stabilityai/stable-diffusion-x4-upscaler)"
        )
    _place(pipe, device, dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _place(
    pipe: DiffusionPipeline, dev: torch.device, dtype: torch.dtype, channels_last: bool | None = None
) -> None:
    """Move a pipeline onto its device in the engine's precision, with the fast GPU layouts.

    `channels_last` (IMAGINE_CHANNELS_LAST) defaults to on for CUDA, off on the CPU.
    """
    pipe.to(dev)
    if pipe.unet.dtype != dtype:
        pipe.to(dtype=dtype)
    if dev.type == "cuda":
        # PyTorch's scaled-dot-product attention (flash / memory-efficient kernels).

        pipe.unet.set_attn_processor(AttnProcessor2_0())
        pipe.vae.set_attn_processor(AttnProcessor2_0())
    if dev.type == "cuda" if channels_last is None else channels_last:
        # channels-last convolutions: the layout cuDNN's fastest kernels want (same results up to
        # the summation order of another kernel)
        pipe.unet.to(memory_format=torch.channels_last)
        pipe.vae.to(memory_format=torch.channels_last)


def load_model(
    model: str,
    device: str = "auto",
    inpaint_model: str | None = None,
    config: str | None = None,
    upscaler_model: str | None = None,
    *,
    dtype: str = "auto",
    channels_last: bool | None = None,
) -> LoadedModel:
    """Load a model onto its device in the right precision, once (library chatter silenced).

    `dtype` and `channels_last` are the engine's precision and layout settings (see `dtype_for`
    and `_place`); the other speed paths are applied afterwards by `engine.speed.apply_speed`.
    """
    with quiet_libraries():
        return _load_model(model, device, inpaint_model, config, upscaler_model, dtype, channels_last)


def _load_model(
    model: str,
    device: str,
    inpaint_model: str | None,
    config: str | None,
    upscaler_model: str | None,
    dtype_setting: str,
    channels_last: bool | None,
) -> LoadedModel:
    dev = resolve_device(device)
    dtype = dtype_for(dev, dtype_setting)
    pipe, preset = load_pipeline(model, dev, dtype, config)
    _place(pipe, dev, dtype, channels_last)
    step = math.lcm(preset.size_step, size_multiple(pipe))
    if step != preset.size_step:
        # The preset's step must also be one the UNet can take: otherwise a size that passes the
        # checks would be silently cropped or padded by the model's down/upsampling.
        log.info("size step of %s raised from %d to %d by its architecture", model, preset.size_step, step)
        preset = dataclasses.replace(preset, size_step=step)
    loaded = LoadedModel(
        name=model, preset=preset, family=_family_of(pipe), pipe=pipe, device=dev, dtype=dtype
    )
    if upscaler_model:
        loaded.upscaler = load_upscaler(upscaler_model, dev, dtype)
    if inpaint_model:
        inpaint_pipe, _ = load_pipeline(inpaint_model, dev, dtype, config, inpainting=True)
        _place(inpaint_pipe, dev, dtype, channels_last)
        loaded.inpaint_override = inpaint_pipe
    log.info("loaded model %s (%s) on %s in %s", model, loaded.family.value, dev, dtype)
    return loaded
