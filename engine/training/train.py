"""Training the toy model from scratch: the VAE, then the UNet and text encoder together.

Three stages, each resumable after a kill (state is written atomically every `checkpoint_every`
steps under the work folder):

1. the autoencoder learns to rebuild 64x64 crops of rendered scenes (L1 + a little MSE, a tiny
   KL term, as Stable Diffusion's VAE without its adversarial loss);
2. a fixed set of scenes is rendered at the aspect buckets and encoded once into latents;
3. the UNet and the text encoder learn to denoise those latents from captions drawn anew each
   step (word order, synonyms, attributes left out, 10% empty for classifier-free guidance), with
   min-SNR loss weights and offset noise, and an exponential moving average of the weights that
   is what ships.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.training import architecture
from engine.training.autoencoder import colour_exact_vae
from engine.training.captions import training_caption_spans
from engine.training.grounding import AttentionGrounding, PlaceWordProbe, PositionProbe, scene_regions
from engine.training.vocabulary import build_tokenizer
from engine.training.world import BUCKET_WEIGHTS, BUCKETS, Scene, render, sample_scene, thing_box

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
_RUN_LENGTH = ("unet_steps", "ground_steps", "checkpoint_every", "sample_every", "threads")


def _recipe(key: str | None) -> dict | None:
    if key is None:
        return None
    values = json.loads(key)
    return {k: v for k, v in values.items() if k not in _RUN_LENGTH}


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


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
            group["lr"] = _lr(step, cfg.vae_steps, cfg.vae_lr, 50)
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


# ---------------------------------------------------------------------------------------------
# Stage 3: the denoiser and the text encoder
# ---------------------------------------------------------------------------------------------


def _min_snr_weights(noise, timesteps: torch.Tensor, gamma: float, boost: float = 1.0) -> torch.Tensor:
    alphas = noise.alphas_cumprod[timesteps]
    snr = alphas / (1 - alphas)
    weights = torch.clamp(snr, max=gamma) / snr  # epsilon prediction: min(SNR, gamma) / SNR
    if boost > 1.0:
        weights = weights * torch.clamp(1.0 / snr, min=1.0, max=boost)
    return weights


def _timesteps(cfg: TrainConfig, total: int, count: int, rng: random.Random) -> torch.Tensor:
    """Uniform timesteps, with `high_noise_share` of them from the noisiest 40% of the schedule."""
    steps = torch.randint(0, total, (count,))
    if not cfg.high_noise_share:  # draws nothing from rng: the base recipe's stream stays as it was
        return steps
    noisy = [i for i in range(count) if rng.random() < cfg.high_noise_share]
    if noisy:
        steps[noisy] = torch.randint(int(total * 0.6), total, (len(noisy),))
    return steps


def _start_from(folder: str, unet, text_encoder) -> None:
    """Load a saved model's UNet and text encoder weights (a fine-tune's starting point)."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    unet.load_state_dict(UNet2DConditionModel.from_pretrained(folder, subfolder="unet").float().state_dict())
    text_encoder.load_state_dict(
        CLIPTextModel.from_pretrained(folder, subfolder="text_encoder").float().state_dict()
    )
    log.info("denoiser starts from the weights in %s", folder)


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


def train_denoiser(cfg: TrainConfig, data: Dataset, work: Path, sample_hook=None, name: str = "denoiser"):
    """Stages 3 and 4 (`name`); returns (unet, text_encoder, tokenizer) with the moving-average
    weights loaded."""
    tokenizer = build_tokenizer()
    unet = architecture.make_unet()
    text_encoder = architecture.make_text_encoder(len(tokenizer))
    if cfg.init_from:
        _start_from(cfg.init_from, unet, text_encoder)
    params = [*unet.parameters(), *text_encoder.parameters()]
    probe = PositionProbe(unet) if cfg.position_probe else None
    grounding = AttentionGrounding(unet) if cfg.grounding else None
    place_probe = PlaceWordProbe(text_encoder.config.hidden_size) if cfg.grounding else None
    extra = [
        *(probe.parameters() if probe is not None else ()),
        *(place_probe.parameters() if place_probe is not None else ()),
    ]
    optimizer = torch.optim.AdamW([*params, *extra], lr=cfg.lr, weight_decay=0.01)
    ema = [p.detach().clone() for p in params]
    stage = Stage(work, name, cfg.unet_steps)
    state = stage.load(cfg.stage_key("denoiser"))
    step = 0
    rng = random.Random(cfg.seed + 3)
    if state is not None:
        unet.load_state_dict(state["unet"])
        text_encoder.load_state_dict(state["text_encoder"])
        if probe is not None:
            probe.load_state_dict(state["probe"])
        if place_probe is not None:
            place_probe.load_state_dict(state["place_probe"])
        optimizer.load_state_dict(state["optimizer"])
        ema = state["ema"]
        step, rng = state["step"], state["rng"]
        torch.set_rng_state(state["torch_rng"])
    else:
        torch.manual_seed(cfg.seed + 3)
    noise_schedule = architecture.training_noise()
    buckets = [b for b in BUCKETS if len(data.scenes[b])]
    weights = [BUCKET_WEIGHTS[BUCKETS.index(b)] for b in buckets]
    unet.train()
    text_encoder.train()
    bar = tqdm(total=cfg.unet_steps, initial=step, desc=name, unit="step", dynamic_ncols=True)
    smoothed = None
    began = time.perf_counter()
    while step < cfg.unet_steps:
        for group in optimizer.param_groups:
            group["lr"] = _lr(step, cfg.unet_steps, cfg.lr, cfg.warmup)
        bucket = rng.choices(buckets, weights=weights)[0]
        pool = data.scenes[bucket]
        index = [rng.randrange(len(pool)) for _ in range(cfg.batch)]
        latents = data.latents[bucket][index]
        scenes = [pool[i] for i in index]
        flip = [j for j in range(len(scenes)) if rng.random() < cfg.mirror] if cfg.mirror else []
        if flip:
            latents = latents.clone()
            latents[flip] = torch.flip(latents[flip], dims=[3])
            for j in flip:
                scenes[j] = scenes[j].mirrored()
        described = [
            training_caption_spans(s, rng, dropout=cfg.caption_dropout, attributes=cfg.attributes)
            for s in scenes
        ]
        captions = [text for text, _spans in described]
        tokens = tokenizer(
            captions,
            padding="max_length",
            max_length=tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        ).input_ids
        noise = torch.randn_like(latents)
        if cfg.offset_noise:
            noise = noise + cfg.offset_noise * torch.randn(latents.shape[0], latents.shape[1], 1, 1)
        timesteps = _timesteps(cfg, noise_schedule.config.num_train_timesteps, latents.shape[0], rng)
        noisy = noise_schedule.add_noise(latents, noise, timesteps)
        states = text_encoder(tokens).last_hidden_state
        predicted = unet(noisy, timesteps, states).sample
        per_sample = (predicted - noise).pow(2).mean(dim=(1, 2, 3))
        loss = (per_sample * _min_snr_weights(noise_schedule, timesteps, cfg.min_snr, cfg.noisy_boost)).mean()
        if probe is not None:
            loss = loss + cfg.position_probe * probe.loss()
        if grounding is not None:
            regions = scene_regions(tokenizer, described, bucket, latents.shape)
            loss = loss + cfg.grounding * grounding.loss(regions)
            if place_probe is not None:
                loss = loss + cfg.grounding * place_probe.loss(states, regions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([*params, *extra], 1.0)
        optimizer.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for average, p in zip(ema, params, strict=True):
                average.lerp_(p.detach(), 1 - decay)
        step += 1
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed:.4f}")
        if step % cfg.checkpoint_every == 0 or step == cfg.unet_steps:
            stage.save(
                {
                    "key": cfg.stage_key("denoiser"),
                    "unet": unet.state_dict(),
                    "text_encoder": text_encoder.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "ema": ema,
                    "step": step,
                    "rng": rng,
                    "torch_rng": torch.get_rng_state(),
                    **({"probe": probe.state_dict()} if probe is not None else {}),
                    **({"place_probe": place_probe.state_dict()} if place_probe is not None else {}),
                }
            )
        if sample_hook is not None and cfg.sample_every and step % cfg.sample_every == 0:
            sample_hook(step, _with_ema(unet, text_encoder, params, ema))
    bar.close()
    log.info(
        "denoiser trained: %d steps in %.0f s, loss %.4f", step, time.perf_counter() - began, smoothed or 0
    )
    _load_ema(params, ema)
    return unet.eval(), text_encoder.eval(), tokenizer


def load_checkpoint(work: Path):
    """(vae, unet, text_encoder, tokenizer) from a work folder's checkpoints, with the moving-average
    weights: what a run killed now would have exported (`python -m engine.training --export-only`)."""
    vae_state = torch.load(work / "vae.pt", weights_only=False)
    if not vae_state.get("done"):
        raise RuntimeError(f"{work}: the VAE stage has not finished; nothing to export yet")
    vae = colour_exact_vae()
    vae.load_state_dict(vae_state["model"])
    vae.register_to_config(scaling_factor=vae_state["scaling_factor"])
    last = work / "grounding.pt"
    state = torch.load(last if last.is_file() else work / "denoiser.pt", weights_only=False)
    tokenizer = build_tokenizer()
    unet = architecture.make_unet()
    text_encoder = architecture.make_text_encoder(len(tokenizer))
    unet.load_state_dict(state["unet"])
    text_encoder.load_state_dict(state["text_encoder"])
    _load_ema([*unet.parameters(), *text_encoder.parameters()], state["ema"])
    log.info("loaded the checkpoint at step %d", state["step"])
    return vae.eval(), unet.eval(), text_encoder.eval(), tokenizer


def _load_ema(params, ema) -> None:
    with torch.no_grad():
        for p, average in zip(params, ema, strict=True):
            p.copy_(average)


class _with_ema:
    """The models with the moving-average weights swapped in, for a preview; swapped back after."""

    def __init__(self, unet, text_encoder, params, ema):
        self.unet, self.text_encoder, self._params, self._ema = unet, text_encoder, params, ema

    def __enter__(self):
        self._saved = [p.detach().clone() for p in self._params]
        _load_ema(self._params, self._ema)
        self.unet.eval()
        self.text_encoder.eval()
        return self

    def __exit__(self, *exc) -> None:
        _load_ema(self._params, self._saved)
        self.unet.train()
        self.text_encoder.train()
