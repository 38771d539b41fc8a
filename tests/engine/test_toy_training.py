"""`python -m engine.training` for a few steps: it trains, resumes after a kill, and what it writes
loads through the same code path as a Stable Diffusion 1.x folder."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import torch

from engine.api import EngineConfig, Finished, ImagineRequest, PromptSpec
from engine.core import EngineCore
from engine.training.train import TrainConfig, build_dataset, train_denoiser, train_vae

TINY = dict(
    vae_steps=2, vae_batch=2, scenes=24, unet_steps=3, batch=2, checkpoint_every=1, warmup=1, sample_every=0
)


class Killed(Exception):
    pass


def test_the_denoiser_resumes_after_a_kill(tmp_path):
    cfg = TrainConfig(**{**TINY, "sample_every": 1})
    vae = train_vae(cfg, tmp_path)
    data = build_dataset(cfg, vae, tmp_path)
    assert sum(len(v) for v in data.latents.values()) == 24
    seen: list[int] = []

    def kill_at_two(step, _models):
        seen.append(step)
        if step == 2:
            raise Killed  # as a SIGKILL right after the step-2 checkpoint was written

    with contextlib.suppress(Killed):
        train_denoiser(cfg, data, tmp_path, sample_hook=kill_at_two)
    assert torch.load(tmp_path / "denoiser.pt", weights_only=False)["step"] == 2
    train_denoiser(cfg, data, tmp_path, sample_hook=lambda step, _m: seen.append(step))
    assert seen == [1, 2, 3]  # the second run did step 3 only
    assert torch.load(tmp_path / "denoiser.pt", weights_only=False)["step"] == 3
    # The VAE stage was done: a new run reuses it instead of training again.
    assert torch.load(tmp_path / "vae.pt", weights_only=False)["done"]


def test_a_quick_training_run_writes_a_model_the_engine_loads(tmp_path):
    out = tmp_path / "model"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "engine.training",
            "--quick",
            "--no-report",
            "--work",
            str(tmp_path / "w"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (out / "unet" / "diffusion_pytorch_model.safetensors").is_file()
    core = EngineCore(EngineConfig(model=str(out), device="cpu", warmup=False))
    info = core.load()
    assert (info.native_width, info.native_height) == (128, 128)
    assert "circle" in info.vocabulary and "lighthouse" in info.vocabulary
    events = []
    core.run(
        ImagineRequest(
            job_id="j",
            prompt=PromptSpec.single("a red circle"),
            seeds=(1, 2, 3, 4),
            width=128,
            height=96,
            steps=2,
        ),
        events.append,
        lambda: False,
    )
    assert isinstance(events[-1], Finished)
    assert (events[-1].images[0].width, events[-1].images[0].height) == (128, 96)
