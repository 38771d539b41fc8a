"""Tiny LoRA files for the `tiny` model: real PEFT adapters on its UNet, saved as diffusers does.

The weights are random but large enough to change the picture, so a test can tell a style on
from a style off. Built with peft (which diffusers' `load_lora_weights` itself needs).
"""

from __future__ import annotations

from pathlib import Path

import torch  # heavy, but this module is only imported by tests that build LoRA files


def write_tiny_lora(folder: Path, name: str, seed: int = 0, scale: float = 0.5) -> Path:
    """Write `folder/name.safetensors`: a rank-4 LoRA on the tiny UNet's attention projections."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from engine.builders import build_tiny

    pipe = build_tiny()
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
    )
    pipe.unet.add_adapter(config)
    with torch.no_grad():
        for module_name, parameter in pipe.unet.named_parameters():
            if "lora_" in module_name:
                parameter.copy_(torch.randn_like(parameter) * scale)
    layers = get_peft_model_state_dict(pipe.unet)
    folder.mkdir(parents=True, exist_ok=True)
    StableDiffusionPipeline.save_lora_weights(
        folder, unet_lora_layers=layers, weight_name=f"{name}.safetensors"
    )
    return folder / f"{name}.safetensors"
