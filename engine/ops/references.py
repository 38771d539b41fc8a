"""Style and omni references (`--sref`, `--oref`): pictures that steer a job through an IP-Adapter.

The operator names a folder (`EngineConfig.ip_adapter`, `IMAGINE_IP_ADAPTER`) holding the adapter
weights (`ip-adapter*.safetensors` or `.bin`) and its CLIP image encoder (`image_encoder/`).
The weights and the image encoder are read once, on the first job that asks (`ReferenceAdapter`,
then resident: the encoder on the engine's device). diffusers' `load_ip_adapter` puts the adapter
into the resident UNet only for the job that asks for it, and `unload_ip_adapter` takes it out
again afterwards, restoring the UNet's own attention processors: every other job runs exactly as
before (same pixels, same speed paths, batching), and a job with references runs alone.

Each reference picture becomes the adapter's image embedding; the conditional terms of the job
see it and the unconditional term sees zeros (as diffusers' pipelines do), so guidance pushes
toward it. Several pictures (`--sref` and `--oref` together) are several image embeddings of the
one adapter, at one scale: that of the larger weight. The weight (Midjourney's `--sw`/`--ow`,
0-1000, default 100) becomes the scale `1.5 * sqrt(weight / 1000)`: 100 gives 0.47, 1000 gives
1.5, 0 turns the reference off.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from engine.api import Reference
from engine.models import LoadedModel
from engine.quiet import quiet_libraries

log = logging.getLogger(__name__)

MAX_WEIGHT = 1000.0
MAX_REFERENCES = 4
NO_ADAPTER = (
    "--sref and --oref need IP-Adapter weights: the operator sets IMAGINE_IP_ADAPTER to an "
    "IP-Adapter folder (ip-adapter*.safetensors and image_encoder/)"
)


def adapter_scale(weight: float) -> float:
    """Midjourney's `--sw`/`--ow` (0-1000) as the IP-Adapter's scale."""
    if not 0 <= weight <= MAX_WEIGHT:
        raise ValueError(f"a reference weight must be from 0 to {MAX_WEIGHT:g}, got {weight:g}")
    return 1.5 * math.sqrt(weight / MAX_WEIGHT)


def adapter_files(folder: str) -> tuple[Path, str]:
    """The adapter folder and its weight file's name; a ValueError naming what is missing."""
    root = Path(folder)
    weights = sorted(p.name for p in root.glob("ip-adapter*") if p.suffix in (".safetensors", ".bin"))
    if not root.is_dir() or not weights:
        raise ValueError(
            f"IMAGINE_IP_ADAPTER ({folder}) must be a folder with an ip-adapter*.safetensors file "
            "and its image_encoder/ folder"
        )
    if not (root / "image_encoder").is_dir():
        raise ValueError(f"IMAGINE_IP_ADAPTER ({folder}) has no image_encoder/ folder next to {weights[0]}")
    return root, weights[0]


@dataclass
class ReferenceAdapter:
    """The operator's adapter, read once: its weights (CPU) and its image encoder (on the engine's
    device), so that each job with references only builds the adapter's small attention layers."""

    folder: str
    weights: dict[str, dict[str, torch.Tensor]]
    image_encoder: Any

    @classmethod
    def load(cls, folder: str, model: LoadedModel) -> ReferenceAdapter:
        # transformers and safetensors are only needed by an engine with an adapter configured.
        from safetensors import safe_open
        from transformers import CLIPVisionModelWithProjection

        root, weight_name = adapter_files(folder)
        try:
            if weight_name.endswith(".safetensors"):
                weights: dict[str, dict[str, torch.Tensor]] = {"image_proj": {}, "ip_adapter": {}}
                with safe_open(str(root / weight_name), framework="pt", device="cpu") as f:
                    for key in f.keys():  # noqa: SIM118  (a safetensors file is not iterable)
                        part, _, name = key.partition(".")
                        if part in weights:
                            weights[part][name] = f.get_tensor(key)
            else:
                weights = torch.load(root / weight_name, map_location="cpu", weights_only=True)
            if not weights.get("image_proj") or not weights.get("ip_adapter"):
                raise KeyError("image_proj and ip_adapter weights")
            with quiet_libraries():
                encoder = CLIPVisionModelWithProjection.from_pretrained(
                    root / "image_encoder", dtype=model.dtype
                )
        except (OSError, KeyError, RuntimeError, ValueError) as exc:
            raise ValueError(
                f"the IP-Adapter in IMAGINE_IP_ADAPTER ({folder}) could not be loaded: {exc}"
            ) from exc
        log.info("IP-Adapter %s loaded from %s", weight_name, folder)
        return cls(folder, weights, encoder.to(model.device).eval())


@contextlib.contextmanager
def references_applied(
    model: LoadedModel, adapter: ReferenceAdapter | None, references: Sequence[Reference]
) -> Iterator[torch.Tensor | None]:
    """The adapter in the UNet for one job, yielding the references' image embeddings
    (num_images, dim), or None (and nothing loaded) when there are no references."""
    if not references:
        yield None
        return
    if adapter is None:
        raise ValueError(NO_ADAPTER)
    if len(references) > MAX_REFERENCES:
        raise ValueError(f"a job takes at most {MAX_REFERENCES} reference pictures, got {len(references)}")
    scale = adapter_scale(max(float(r.weight) for r in references))
    pipe, unet = model.pipe, model.unet
    processors = dict(unet.attn_processors)  # the engine's own (fused, compiled...) processors
    try:
        try:
            pipe.register_modules(image_encoder=adapter.image_encoder)  # resident: not read again
            with quiet_libraries():
                pipe.load_ip_adapter(adapter.weights, subfolder="", weight_name="", image_encoder_folder=None)
            pipe.set_ip_adapter_scale(scale)
            with torch.no_grad():
                embeds = [pipe.encode_image(r.image.to_pil(), model.device, 1)[0] for r in references]
        except (KeyError, RuntimeError) as exc:
            raise ValueError(
                f"the IP-Adapter in IMAGINE_IP_ADAPTER ({adapter.folder}) does not fit this model: {exc}"
            ) from exc
        yield torch.cat(embeds).to(model.dtype)
    finally:
        if (
            getattr(unet, "encoder_hid_proj", None) is not None
            or getattr(pipe, "image_encoder", None) is not None
        ):
            with quiet_libraries():
                pipe.unload_ip_adapter()
        unet.set_attn_processor(processors)


def lane_image_embeds(embeds: torch.Tensor, terms: int, cells: int, use_uncond: bool) -> torch.Tensor:
    """The UNet's `image_embeds` for a lane's rows (term-major, `cells` rows per term): the
    references for every conditional term, zeros for the unconditional one."""
    rows = embeds.unsqueeze(0).repeat(terms * cells, 1, 1)
    if use_uncond:
        rows[:cells] = 0
    return rows
