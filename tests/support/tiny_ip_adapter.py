"""Tiny random IP-Adapter weights for a UNet, saved as diffusers' `load_ip_adapter` reads them.

The layout of h94/IP-Adapter's `models/` folder: `ip-adapter.safetensors` (an `image_proj`
projection to four tokens and, per cross-attention layer, `to_k_ip`/`to_v_ip`) and a CLIP image
encoder (`CLIPVisionModelWithProjection` and its processor) in `image_encoder/`. Every size
follows the UNet it is built for; the weights are random with a fixed seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

IMAGE_EMBED_DIM = 16


def _hidden_size(unet: Any, name: str) -> int:
    """The width of the attention layer `name` (the rule diffusers' loader uses)."""
    channels = list(unet.config.block_out_channels)
    if name.startswith("mid_block"):
        return channels[-1]
    if name.startswith("up_blocks"):
        return list(reversed(channels))[int(name[len("up_blocks.")])]
    return channels[int(name[len("down_blocks.")])]


def build_tiny_ip_adapter(unet: Any, folder: Path, seed: int = 0) -> Path:
    """Save an adapter for `unet` (a diffusers UNet2DConditionModel) under `folder`."""
    # torch, safetensors and transformers are heavy; only the tests that build an adapter import them.
    import torch
    from safetensors.torch import save_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from engine.builders import TINY_CLIP_SIZES  # imports torch too

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    encoder_config = CLIPVisionConfig(
        **TINY_CLIP_SIZES, image_size=32, patch_size=8, projection_dim=IMAGE_EMBED_DIM
    )
    CLIPVisionModelWithProjection(encoder_config).save_pretrained(folder / "image_encoder")
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        folder / "image_encoder"
    )
    width = unet.config.cross_attention_dim
    weights = {
        "image_proj.proj.weight": torch.randn(width * 4, IMAGE_EMBED_DIM) * 0.5,
        "image_proj.proj.bias": torch.zeros(width * 4),
        "image_proj.norm.weight": torch.ones(width),
        "image_proj.norm.bias": torch.zeros(width),
    }
    key = 1  # diffusers numbers every attention layer and reads the cross-attention ones (odd)
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        size = _hidden_size(unet, name)
        weights[f"ip_adapter.{key}.to_k_ip.weight"] = torch.randn(size, width) * 0.5
        weights[f"ip_adapter.{key}.to_v_ip.weight"] = torch.randn(size, width) * 0.5
        key += 2
    save_file(weights, folder / "ip-adapter.safetensors")
    return folder
