"""Stages 1 and 2: the autoencoder, and the scenes encoded once into latents.

1. the autoencoder learns to rebuild 64x64 crops of rendered scenes (L1 + a little MSE, a tiny
   KL term, as Stable Diffusion's VAE without its adversarial loss), from the colour-exact start
   of `engine.training.autoencoder`;
2. a fixed set of scenes is rendered at the aspect buckets and encoded once into latents, which
   every later stage reads (their captions are drawn anew each step).
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.training.autoencoder import colour_exact_vae
from engine.training.config import Stage, TrainConfig, lr_at
from engine.training.world import BUCKET_WEIGHTS, BUCKETS, Scene, render, sample_scene, thing_box

log = logging.getLogger(__name__)


def _to_tensor(images) -> torch.Tensor:
    arrays = np.stack([np.asarray(im, dtype=np.float32) for im in images])
    return torch.from_numpy(arrays).permute(0, 3, 1, 2) / 127.5 - 1.0


# ---------------------------------------------------------------------------------------------
# Stage 1: the autoencoder
# ---------------------------------------------------------------------------------------------


def _vae_batch(rng: random.Random, size: int, crop: int = 64) -> torch.Tensor:
    """Crops of rendered scenes, most of them around an object: objects are a small share of the
    pixels, and their edges and colours are what the decoder must get right."""
    crops = []
    for _ in range(size):
        width, height = rng.choices(BUCKETS, weights=BUCKET_WEIGHTS)[0]
        scene = sample_scene(rng.getrandbits(40), allow_held_out=True)
        image = render(scene, width, height)
        if rng.random() < 0.75:
            cx, cy, _ = thing_box(rng.choice(scene.things), width, height)
            x = int(min(max(cx - crop / 2 + rng.uniform(-16, 16), 0), width - crop))
            y = int(min(max(cy - crop / 2 + rng.uniform(-16, 16), 0), height - crop))
        else:
            x, y = rng.randrange(width - crop + 1), rng.randrange(height - crop + 1)
        crops.append(image.crop((x, y, x + crop, y + crop)))
    return _to_tensor(crops)


def train_vae(cfg: TrainConfig, work: Path):
    """Stage 1; returns the trained AutoencoderKL with its latent scaling factor set."""
    stage = Stage(work, "vae", cfg.vae_steps)
    vae = colour_exact_vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    state = stage.load(cfg.stage_key("vae"))
    step = 0
    rng = random.Random(cfg.seed)
    if state is not None:
        vae.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, rng = state["step"], state["rng"]
        if state.get("done"):
            vae.register_to_config(scaling_factor=state["scaling_factor"])
            return vae.eval()
    torch.manual_seed(cfg.seed + step)
    vae.train()
    bar = tqdm(total=cfg.vae_steps, initial=step, desc="vae", unit="step", dynamic_ncols=True)
    while step < cfg.vae_steps:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg.vae_steps, cfg.vae_lr, 50)
        x = _vae_batch(rng, cfg.vae_batch)
        posterior = vae.encode(x).latent_dist
        y = vae.decode(posterior.sample()).sample
        loss = (y - x).abs().mean() + 0.5 * (y - x).pow(2).mean() + 1e-6 * posterior.kl().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.vae_steps:
            stage.save(_vae_state(cfg, vae, optimizer, step, rng))
    bar.close()
    vae.eval()
    scaling = _scaling_factor(vae, cfg.seed)
    vae.register_to_config(scaling_factor=scaling)
    stage.save({**_vae_state(cfg, vae, optimizer, step, rng), "done": True, "scaling_factor": scaling})
    log.info("vae trained: %d steps, latent scaling factor %.4f", step, scaling)
    return vae


def _vae_state(cfg, vae, optimizer, step, rng) -> dict:
    return {
        "key": cfg.stage_key("vae"),
        "model": vae.state_dict(),
        "optimizer": optimizer.state_dict(),
        "step": step,
        "rng": rng,
    }


@torch.no_grad()
def _scaling_factor(vae, seed: int) -> float:
    """1 / the latents' standard deviation, as SD's 0.18215 was measured: unit-variance latents."""
    rng = random.Random(seed + 1)
    images = [render(sample_scene(rng.getrandbits(40), allow_held_out=True)) for _ in range(256)]
    latents = torch.cat(
        [vae.encode(_to_tensor(images[i : i + 32])).latent_dist.mean for i in range(0, 256, 32)]
    )
    return float(1.0 / latents.std())


# ---------------------------------------------------------------------------------------------
# Stage 2: the latent dataset
# ---------------------------------------------------------------------------------------------


@dataclass
class Dataset:
    """Latents per bucket, and the scene each one shows (its captions are drawn from the scene)."""

    latents: dict[tuple[int, int], torch.Tensor]
    scenes: dict[tuple[int, int], list[Scene]]


@torch.no_grad()
def build_dataset(cfg: TrainConfig, vae, work: Path) -> Dataset:
    path = work / "latents.pt"
    key = cfg.stage_key("latents")
    if path.is_file():
        saved = torch.load(path, weights_only=False)
        if saved.get("key") == key:
            return Dataset(latents=saved["latents"], scenes=saved["scenes"])
    rng = random.Random(cfg.seed + 2)
    by_bucket: dict[tuple[int, int], list[Scene]] = {b: [] for b in BUCKETS}
    for _ in range(cfg.scenes):
        bucket = rng.choices(BUCKETS, weights=BUCKET_WEIGHTS)[0]
        by_bucket[bucket].append(sample_scene(rng.getrandbits(40)))
    latents = {}
    bar = tqdm(total=cfg.scenes, desc="latents", unit="scene", dynamic_ncols=True)
    for (width, height), scenes in by_bucket.items():
        chunks = []
        for i in range(0, len(scenes), 64):
            images = [render(s, width, height) for s in scenes[i : i + 64]]
            chunks.append(vae.encode(_to_tensor(images)).latent_dist.mean * vae.config.scaling_factor)
            bar.update(len(images))
        latents[(width, height)] = torch.cat(chunks) if chunks else torch.zeros(0, 4, height // 8, width // 8)
    bar.close()
    tmp = path.with_suffix(".tmp")
    torch.save({"key": key, "latents": latents, "scenes": by_bucket}, tmp)
    os.replace(tmp, path)
    return Dataset(latents=latents, scenes=by_bucket)
