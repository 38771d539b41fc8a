"""The training recipe: its settings, each stage's recipe, and resumable checkpoints.

`python -m engine.training` runs five stages, each resumable after a kill (state is written
atomically every `checkpoint_every` steps under the work folder):

1. the autoencoder learns to rebuild 64x64 crops of rendered scenes (`engine.training.latents`);
2. a fixed set of scenes is rendered at the aspect buckets and encoded once into latents;
3. the UNet and the text encoder learn to denoise those latents from captions drawn anew each
   step (`engine.training.train`);
4. grounding (`grounding_config`): where things are, left from right;
5. negatives (`negatives_config`): what a lone colour word means, for `--no`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from tqdm import tqdm

from engine.training.world import WORLD_VERSION

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    seed: int = 1234
    vae_steps: int = 600
    vae_batch: int = 16
    vae_lr: float = 5e-4
    scenes: int = 24000  # rendered and encoded once; captions vary every step
    unet_steps: int = 9000
    batch: int = 32
    lr: float = 6e-4
    warmup: int = 200
    ema_decay: float = 0.999
    min_snr: float = 5.0
    offset_noise: float = 0.05
    caption_dropout: float = 0.1
    attributes: float = 0.06  # share of colour-only or background-only captions (`--no red`)
    # Left and right: nothing in a picture's content tells them apart (skies and grounds tell top
    # from bottom), so the words are learned only from pairs that differ in them. `mirror` flips
    # that share of each batch left to right, captions swapped, so every scene comes in both.
    mirror: float = 0.0
    # Where the layout is decided: the noisiest steps. `high_noise_share` of each batch draws its
    # timestep from the noisiest 40%, and `noisy_boost` raises an epsilon loss weight of 1 up to
    # 1 / SNR (capped there) below SNR 1, so an object in the wrong place costs something there.
    high_noise_share: float = 0.0
    noisy_boost: float = 1.0
    # A diffusers folder whose UNet and text encoder start this stage (a fine-tune) instead of
    # random weights: the shipped model's second stage starts from its first.
    init_from: str = ""
    # A UNet has no sense of where it is but what zero padding at the borders tells it, and
    # nothing in these pictures asks it to learn left from right (skies and grounds teach top from
    # bottom), so "left" and "right" had nothing to attach to. With `position_probe` > 0, a 1x1
    # probe on the features that feed the cross-attention must read each cell's coordinates from
    # them, at that loss weight. The probe is training scaffolding: it is not part of the model.
    position_probe: float = 0.0
    # With `grounding` > 0, each object's words must put their cross-attention on its region
    # (engine.training.grounding), at that loss weight.
    grounding: float = 0.0
    # Stage 4 (`grounding_config`): this many steps from stage 3's model with the grounding losses,
    # mirroring and the noisy-step emphasis on. 0 skips it.
    ground_steps: int = 6000
    # Stage 5 (`negatives_config`): this many steps from stage 4's model with more colour-only
    # captions. 0 skips it.
    neg_steps: int = 2000
    checkpoint_every: int = 250
    sample_every: int = 1000
    threads: int = 0  # 0: torch's default

    def stage_key(self, stage: str) -> str:
        """What a stage's saved state depends on: a changed recipe starts that stage afresh."""
        fields = {
            "vae": ("seed", "vae_steps", "vae_batch", "vae_lr"),
            "latents": ("seed", "vae_steps", "vae_batch", "vae_lr", "scenes"),
        }.get(stage)
        values = asdict(self) if fields is None else {k: getattr(self, k) for k in fields}
        if stage == "latents":
            values["world"] = WORLD_VERSION  # what the scenes look like is part of the cache
        return json.dumps(values, sort_keys=True)


@dataclass
class Stage:
    """Where one stage's state lives, and its progress bar."""

    folder: Path
    name: str
    total: int
    bar: tqdm | None = field(default=None, repr=False)

    @property
    def checkpoint(self) -> Path:
        return self.folder / f"{self.name}.pt"

    def save(self, state: dict) -> None:
        tmp = self.checkpoint.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.checkpoint)  # a kill mid-write leaves the previous checkpoint whole

    def load(self, key: str) -> dict | None:
        if not self.checkpoint.is_file():
            return None
        state = torch.load(self.checkpoint, weights_only=False)
        if _recipe(state.get("key")) != _recipe(key):
            log.warning("%s: checkpoint is from another recipe; starting this stage afresh", self.name)
            return None
        return state


# How long a run is, or how often it saves, is not part of its recipe: a run asked for more steps
# goes on from its checkpoint (train longer), and one asked for fewer than it has done exports
# what it has.
_RUN_LENGTH = ("unet_steps", "ground_steps", "neg_steps", "checkpoint_every", "sample_every", "threads")


def _recipe(key: str | None) -> dict | None:
    if key is None:
        return None
    values = json.loads(key)
    return {k: v for k, v in values.items() if k not in _RUN_LENGTH}


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up, then a cosine down to 10% of `base`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def grounding_config(cfg: TrainConfig, first: Path) -> TrainConfig:
    """Stage 4's recipe: stage 3's model (saved in `first`) taught where things are.

    Measured on the stage-3 model, which drew "left" and "right" in the same place: mirroring and
    the noisy-step emphasis alone changed nothing in 1,500 steps, nor did the position probe or
    the attention grounding at a weight of 0.02; with the place-word probe added, left and right
    were drawn where named in every cell by step 1,500.
    """
    return replace(
        cfg,
        init_from=str(first),
        unet_steps=cfg.ground_steps,
        lr=4e-4,
        warmup=100,
        mirror=0.5,
        high_noise_share=0.3,
        noisy_boost=5.0,
        attributes=0.1,
        position_probe=0.2,
        grounding=0.2,
    )


def negatives_config(cfg: TrainConfig, second: Path) -> TrainConfig:
    """Stage 5's recipe: stage 4's model (saved in `second`) taught what a lone colour means.

    `--no green` is `green::-0.5`: the guidance pushes away from what the model draws for "green"
    alone. After stage 4, which saw such captions in 10% of its steps, a tree asked for with
    `--no green` stayed green (35% of its green removed); stage 5 raises their share to 40%, on a
    world whose unnamed trees are sometimes autumn-coloured (there is something to turn to), at a
    lower rate, with stage 4's grounding kept on so the places stay learned. Measured on 2,000
    steps from the same model (2026-12-06): with the noisy-step emphasis kept and a 25% share,
    `--no` rose to 88% but the named colour fell to 88.5%; with the emphasis off, 25% gave `--no`
    79% on 12 seeds and 40% gave 92%, every other goal met.
    """
    return replace(
        grounding_config(cfg, second),
        unet_steps=cfg.neg_steps,
        lr=2e-4,
        warmup=50,
        attributes=0.4,
        high_noise_share=0.0,
        noisy_boost=1.0,
    )
