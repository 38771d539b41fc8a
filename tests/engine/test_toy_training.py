"""`python -m engine.training` for a few steps: it trains, resumes after a kill, and what it writes
loads through the same code path as a Stable Diffusion 1.x folder."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import torch

from engine.api import EngineConfig, Finished, ImagineRequest, PromptSpec
from engine.core import EngineCore
from engine.training import architecture
from engine.training.config import TrainConfig
from engine.training.grounding import AttentionGrounding, PlaceWordProbe, PositionProbe, scene_regions
from engine.training.latents import build_dataset, train_vae
from engine.training.train import train_denoiser
from engine.training.vocabulary import build_tokenizer
from engine.training.world import Scene, Thing

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
    # Stages 4 and 5 each ran from the previous stage's saved model, and what ships is plain
    # diffusers (no probes).
    for stage in ("grounding", "negatives"):
        assert torch.load(tmp_path / "w" / f"{stage}.pt", weights_only=False)["step"] == 3
        assert (tmp_path / "w" / f"before-{stage}" / "model_index.json").is_file()
    assert "probe" not in (out / "unet" / "config.json").read_text()
    core = EngineCore(EngineConfig(model=str(out), device="cpu", warmup=False))
    info = core.load()
    assert (info.native_width, info.native_height) == (128, 128)
    # it runs with the toy preset's defaults (imagine-preset.txt), not SD 1.5's 30 steps
    assert (info.default_steps, info.default_guidance) == (20, 5.0)
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


def _two_things() -> Scene:
    return Scene(
        things=(
            Thing(kind="circle", colour="red", place="left", size="small"),
            Thing(kind="square", colour="blue", place="top right", size="small"),
        ),
        background="plain",
    )


def _phrases(scene: Scene) -> list[tuple[Thing, str]]:
    first, second = scene.things
    return [(first, "a red circle on the left"), (second, "a blue square at the top right")]


def test_each_word_is_grounded_in_its_own_object_and_mirroring_swaps_sides():
    tokenizer = build_tokenizer()
    scene = _two_things()
    text = "a red circle on the left and a blue square at the top right on a plain background"
    spans = _phrases(scene)
    [words] = scene_regions(tokenizer, [(text, spans)], (128, 128), (4, 16, 16))
    tokens = tokenizer(text).input_ids
    named = {
        tokenizer.convert_ids_to_tokens(tokens[j]).removesuffix("</w>"): m.view(8, 8) for j, m, _ in words
    }
    assert set(named) == {"red", "circle", "left", "blue", "square", "top", "right"}  # no "a", "on", "the"
    assert named["left"][:, :4].sum() == named["left"].sum() > 0  # all of it on the left half
    assert named["right"][:4, 4:].sum() == named["right"].sum() > 0  # the top right quarter
    assert {p for _, _, p in words if p} == {"left", "top right"}  # place words carry their place
    mirrored = scene.mirrored()
    assert [t.place for t in mirrored.things] == ["right", "top left"]


def test_the_grounding_losses_fall_on_a_batch_they_train_on():
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    unet = architecture.make_unet()
    encoder = architecture.make_text_encoder(len(tokenizer))
    grounding = AttentionGrounding(unet)
    probe = PlaceWordProbe(encoder.config.hidden_size)
    scene = _two_things()
    text = "a red circle on the left and a blue square at the top right"
    spans = _phrases(scene)
    regions = scene_regions(tokenizer, [(text, spans)], (128, 128), (4, 16, 16))
    ids = tokenizer([text], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
    params = [*unet.parameters(), *encoder.parameters(), *probe.parameters()]
    optimizer = torch.optim.AdamW(params, lr=3e-3)
    latents = torch.randn(1, 4, 16, 16)
    position = PositionProbe(unet)
    params.extend(position.parameters())
    losses = []
    for step in range(8):
        if step == 4:  # a preview sampled mid-run leaves nothing for the next step's losses
            with torch.no_grad():
                context = encoder(ids.input_ids).last_hidden_state.expand(2, -1, -1)
                unet(torch.randn(2, 4, 8, 8), torch.tensor([900]), context)
        states = encoder(ids.input_ids).last_hidden_state
        unet(latents, torch.tensor([500]), states)
        loss = grounding.loss(regions) + probe.loss(states, regions) + position.loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
