"""Writing the trained components as a diffusers folder, and previews while training."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from engine.presets import PRESET_HINT
from engine.training import architecture

log = logging.getLogger(__name__)

PREVIEW_PROMPTS = (
    "a red circle on the left on a night sky",
    "a blue square on the right on a plain background",
    "a yellow star at the top on a day sky",
    "a green tree at the bottom on snow",
    "a white boat at sea",
    "a purple triangle in the bottom right corner, desert",
    "a red house on grass",
    "an orange sun at dusk",
)


def assemble(vae, unet, text_encoder, tokenizer) -> StableDiffusionPipeline:
    """The components as the pipeline a Stable Diffusion 1.x folder loads into."""
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=architecture.sampling_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def save_model(pipe: StableDiffusionPipeline, out: Path) -> int:
    """Save in float16 safetensors (half the bytes; the engine loads it in its own precision).

    Written beside the target and swapped in, so a failed export leaves the old weights whole.
    Returns the folder's size in bytes.
    """
    tmp = out.with_name(out.name + ".new")
    shutil.rmtree(tmp, ignore_errors=True)
    pipe.to(torch.float16)
    try:
        pipe.save_pretrained(tmp, safe_serialization=True)
    finally:
        pipe.to(torch.float32)
    # the folder runs with the toy preset's defaults wherever it is loaded from (engine.models)
    (tmp / PRESET_HINT).write_text("toy\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log.info("saved the toy model to %s (%.2f MB)", out, size / 1e6)
    return size


@torch.no_grad()
def preview_sheet(pipe: StableDiffusionPipeline, path: Path, steps: int = 20, guidance: float = 5.0) -> None:
    """One picture per preview prompt, side by side, to look at while training runs."""
    generator = torch.Generator().manual_seed(0)
    images = pipe(
        list(PREVIEW_PROMPTS), num_inference_steps=steps, guidance_scale=guidance, generator=generator
    ).images
    sheet = Image.new("RGB", (128 * 4, 128 * 2))
    for i, image in enumerate(images):
        sheet.paste(image, ((i % 4) * 128, (i // 4) * 128))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
