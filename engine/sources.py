"""Where a model's weights come from: the package, a diffusers folder, a single checkpoint file,
or the Hugging Face Hub; each failure is a `ModelLoadError` that says why and what to try."""

import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from engine.quiet import quiet_libraries

with quiet_libraries():  # importing the pipelines is where transformers' torchvision advice fires
    from diffusers import (
        DiffusionPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

from engine.presets import Preset


class ModelLoadError(ValueError):
    """The model named in the configuration cannot be loaded; the message says why and what to try."""


PACKAGE_DIR = Path(__file__).resolve().parent


def packaged_model_dir(preset: Preset) -> Path:
    """Where a `package:` preset's weights live inside the installed engine package."""
    return PACKAGE_DIR / preset.source.removeprefix("package:")


def load_folder(path: Path, dtype: torch.dtype) -> DiffusionPipeline:
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


def load_packaged(preset: Preset, dtype: torch.dtype) -> DiffusionPipeline:
    path = packaged_model_dir(preset)
    if not (path / "model_index.json").is_file():
        raise ModelLoadError(
            f"the {preset.name} model's weights are missing from {path}: reinstall the package, or "
            "rebuild them with `python -m engine.training`"
        )
    return load_folder(path, dtype)


def is_sdxl_checkpoint(path: Path) -> bool:

    with safe_open(str(path), framework="pt") as f:
        return any(k.startswith("conditioner.embedders.1") for k in f.keys())  # noqa: SIM118


def load_single_file(path: Path, dtype: torch.dtype, config: str | None) -> DiffusionPipeline:
    """A single original-format checkpoint through diffusers' `from_single_file`.

    `config` (a local diffusers folder or repo id with the component configs) lets it load
    offline; without it diffusers fetches the matching config from the Hub.
    """
    cls = StableDiffusionXLPipeline if is_sdxl_checkpoint(path) else StableDiffusionPipeline
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


def load_hub(repo_id: str, dtype: torch.dtype) -> DiffusionPipeline:
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


def looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) == 2 and all(parts) and not name.startswith((".", "/", "~"))
