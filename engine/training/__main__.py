"""`python -m engine.training`: rebuild the shipped toy model from scratch (resumable)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from dataclasses import fields
from pathlib import Path

import torch

from engine.training.config import TrainConfig, grounding_config, negatives_config
from engine.training.export import assemble, preview_sheet, save_model
from engine.training.latents import build_dataset, train_vae
from engine.training.train import load_checkpoint, train_denoiser

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "toy_model"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine.training",
        description="Train the toy model from scratch. Kill it any time: run it again to resume.",
    )
    p.add_argument("--work", type=Path, default=Path("data/toy-training"), help="checkpoints and caches")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the diffusers folder to write")
    p.add_argument("--quick", action="store_true", help="a few steps of each stage (tests, smoke runs)")
    p.add_argument("--no-report", action="store_true", help="skip the prompt-following benchmark at the end")
    p.add_argument(
        "--export-only",
        action="store_true",
        help="write the folder from the checkpoints as they are, no training",
    )
    for f in fields(TrainConfig):
        p.add_argument(f"--{f.name.replace('_', '-')}", type=type(f.default), default=None)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = TrainConfig()
    if args.quick:
        cfg = TrainConfig(
            vae_steps=3,
            vae_batch=2,
            scenes=48,
            unet_steps=3,
            batch=4,
            ground_steps=3,
            neg_steps=3,
            checkpoint_every=2,
            sample_every=0,
            warmup=1,
        )
    for f in fields(TrainConfig):
        value = getattr(args, f.name)
        if value is not None:
            setattr(cfg, f.name, value)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    if args.export_only:
        save_model(assemble(*load_checkpoint(args.work)), args.out)
        return 0
    vae = train_vae(cfg, args.work)
    data = build_dataset(cfg, vae, args.work)

    def sample(step: int, models) -> None:
        with models:
            pipe = assemble(vae, models.unet, models.text_encoder, tokenizer_for_preview)
            preview_sheet(pipe, args.work / "samples" / f"step-{step:06d}.png")

    from engine.training.vocabulary import build_tokenizer

    tokenizer_for_preview = build_tokenizer()
    unet, text_encoder, tokenizer = train_denoiser(cfg, data, args.work, sample_hook=sample)
    # Each later stage starts from the previous one's model, saved as a diffusers folder.
    for name, steps, recipe in (
        ("grounding", cfg.ground_steps, grounding_config),
        ("negatives", cfg.neg_steps, negatives_config),
    ):
        if not steps:
            continue
        previous = args.work / f"before-{name}"
        save_model(assemble(vae, unet, text_encoder, tokenizer), previous)
        unet, text_encoder, tokenizer = train_denoiser(
            recipe(cfg, previous), data, args.work, sample_hook=sample, name=name
        )
    pipe = assemble(vae, unet, text_encoder, tokenizer)
    size = save_model(pipe, args.out)
    logging.info("trained in %.0f s; %s holds %.2f MB", time.perf_counter() - began, args.out, size / 1e6)
    if not args.no_report:
        from engine.training.bench import run_report

        run_report(str(args.out), quick=args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
