"""Loading models: one resident weight set per model, and the derived pipelines that share it.

A model comes from a preset name, a Hugging Face repo id, a local diffusers folder (as written by
`save_pretrained`), or a single `.safetensors` checkpoint. The presets `tiny` and `tiny-xl` are
built from code with a fixed seed (engine/builders.py): small random-weight pipelines of each
family, tokenizer included, so tests and demos run anywhere in seconds without a download. Where
weights come from (package, folder, checkpoint, Hub) is engine/sources.py.

img2img and inpainting pipelines are derived with `from_pipe`: they hold the very same UNet, VAE
and text encoders, never a second copy.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from engine.quiet import quiet_libraries

with quiet_libraries():  # importing the pipelines is where transformers' torchvision advice fires
    from diffusers import (
        AutoencoderKL,
        DiffusionPipeline,
        EulerDiscreteScheduler,
        StableDiffusionImg2ImgPipeline,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        StableDiffusionUpscalePipeline,
        StableDiffusionXLImg2ImgPipeline,
        StableDiffusionXLInpaintPipeline,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from diffusers.models.attention_processor import AttnProcessor2_0

from engine.api import Family
from engine.builders import build_random_weights, build_tiny
from engine.presets import PRESET_HINT, PRESETS, Preset, get_preset, preset_for_family
from engine.sources import (
    ModelLoadError,
    load_folder,
    load_hub,
    load_packaged,
    load_single_file,
    looks_like_repo_id,
)

log = logging.getLogger(__name__)


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
        return self._derived_pipe("img2img", StableDiffusionImg2ImgPipeline, StableDiffusionXLImg2ImgPipeline)

    def inpaint(self) -> DiffusionPipeline:
        """The inpainting pipeline: the operator's dedicated model, or the base model's components."""
        if self.inpaint_override is not None:
            return self.inpaint_override
        return self._derived_pipe("inpaint", StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline)

    def _derived_pipe(
        self, name: str, sd: type[DiffusionPipeline], xl: type[DiffusionPipeline]
    ) -> DiffusionPipeline:
        """The `name` pipeline of this model's family over the same components, built once."""
        if name not in self._derived:
            self._derived[name] = _derive(xl if self.family is Family.SDXL else sd, self.pipe)
        return self._derived[name]

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


def folder_preset(path: Path, family: Family, native: int) -> Preset | None:
    """The preset that `path`/imagine-preset.txt names, or None when the folder has no such file.

    A model folder may name the preset whose defaults it takes (steps, guidance, Vary and Upscale
    strengths, house style): `python -m engine.training` writes "toy" there, so a retrained toy
    model in any folder (and the training's own benchmark of it) runs as the `toy` preset does,
    not with SD 1.5's 30 steps, guidance 7 and house style.
    """
    hint = path / PRESET_HINT
    if not hint.is_file():
        return None
    named = hint.read_text(encoding="utf-8", errors="replace").strip()
    preset = get_preset(named)
    if preset is None:
        raise ModelLoadError(f"{hint} names {named[:60]!r}, which is not a preset ({', '.join(PRESETS)})")
    if preset.family is not family:
        raise ModelLoadError(
            f"{hint} names the {preset.name!r} preset ({preset.family.value}), but the folder holds "
            f"an {family.value} model"
        )
    if preset.native_width != native:
        raise ModelLoadError(
            f"{hint} names the {preset.name!r} preset ({preset.native_width} px), but the folder's "
            f"model draws {native} px"
        )
    return preset


def _family_of(pipe: DiffusionPipeline) -> Family:
    return Family.SDXL if getattr(pipe, "text_encoder_2", None) is not None else Family.SD


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
        pipe = load_packaged(preset, dtype)
    elif preset is not None:
        pipe = load_hub(preset.source, dtype)
    else:
        path = Path(name).expanduser()
        if path.is_dir():
            pipe = load_folder(path, dtype)
        elif path.is_file() and path.suffix in (".safetensors", ".ckpt"):
            pipe = load_single_file(path, dtype, config)
        elif path.suffix in (".safetensors", ".ckpt") or name.startswith((".", "/", "~")):
            raise ModelLoadError(f"model file or folder {name!r} does not exist")
        elif looks_like_repo_id(name):
            pipe = load_hub(name, dtype)
        else:
            raise ModelLoadError(
                f"unknown model {name!r}: not a preset ({', '.join(PRESETS)}), not an existing folder "
                "or .safetensors file, and not a Hugging Face repo id (owner/name)"
            )
        family = _family_of(pipe)
        native = pipe.unet.config.sample_size * vae_scale(pipe)
        preset = preset_for_family(family, name, native=native)
        hinted = folder_preset(path, family, native) if path.is_dir() else None
        if hinted is not None:
            preset = dataclasses.replace(hinted, name=name, source=name)
        elif native != PRESETS["sdxl" if family is Family.SDXL else "sd15"].native_width:
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
        pipe = load_folder(path, dtype)
    elif looks_like_repo_id(name):
        pipe = load_hub(name, dtype)
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
