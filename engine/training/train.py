"""Stages 3 to 5: the UNet and the text encoder learn to denoise the latents from captions.

Captions are drawn anew each step (word order, synonyms, attributes left out, 10% empty for
classifier-free guidance), with min-SNR loss weights and offset noise, and an exponential moving
average of the weights is what ships. Stages 4 and 5 are the same loop from the previous stage's
model with another recipe (`engine.training.config`).
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path

import torch
from tqdm import tqdm

from engine.training import architecture
from engine.training.autoencoder import colour_exact_vae
from engine.training.captions import training_caption_spans
from engine.training.config import Stage, TrainConfig, lr_at
from engine.training.grounding import AttentionGrounding, PlaceWordProbe, PositionProbe, scene_regions
from engine.training.latents import Dataset
from engine.training.vocabulary import build_tokenizer
from engine.training.world import BUCKET_WEIGHTS, BUCKETS

log = logging.getLogger(__name__)

# The stages that train the denoiser, in order: a work folder's latest is what it exports.
DENOISER_STAGES = ("denoiser", "grounding", "negatives")


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
            group["lr"] = lr_at(step, cfg.unet_steps, cfg.lr, cfg.warmup)
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
    done = [work / f"{name}.pt" for name in DENOISER_STAGES if (work / f"{name}.pt").is_file()]
    if not done:
        raise RuntimeError(f"{work}: no denoiser stage has a checkpoint yet; nothing to export")
    state = torch.load(done[-1], weights_only=False)
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
