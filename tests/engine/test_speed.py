"""The speed paths (engine/speed.py): each one draws the plain path's pictures, within a stated
tolerance, and the compile warm-up leaves nothing for the first job to compile.

Tolerances are mean and largest absolute differences in 8-bit levels over a 2x2 grid of the
`tiny` preset (128 px, 4 steps), measured on the CPU against the fp32 path with every speed path
off. Paths that only reorder the same arithmetic (channels-last, fused q/k/v, compilation) stay
within a level or two; lower precisions lose more, and the tolerance says how much.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import torch._dynamo
from torch._dynamo.utils import counters

from engine.api import EngineConfig, aspect_buckets
from engine.core import EngineCore
from engine.speed import Float8Linear, quantize_fp8
from tests.engine.conftest import finish, imagine, pixels

STEPS = 4


def _grid(config: EngineConfig) -> tuple[np.ndarray, EngineCore]:
    core = EngineCore(config)
    core.load()
    done = finish(core, imagine(steps=STEPS))
    return np.stack([pixels(image) for image in done.images]), core


def _config(**speed) -> EngineConfig:
    return EngineConfig(model="tiny", device="cpu", warmup=False, **speed)


@pytest.fixture(scope="module")
def plain() -> np.ndarray:
    return _grid(_config())[0]


@pytest.mark.parametrize(
    ("speed", "named", "mean_max", "worst_max"),
    [
        ({"dtype": "bfloat16"}, "bfloat16", 2.0, 16),
        ({"dtype": "float16"}, "float16", 1.0, 8),
        ({"channels_last": True}, "channels-last", 0.05, 2),
        ({"fuse_qkv": True}, "fused-qkv", 0.05, 2),
        ({"fp8": "weights"}, "fp8:weights", 2.0, 16),
        ({"fp8": "matmul"}, "fp8:matmul", 3.0, 24),
        ({"compile": "regional", "compile_backend": "eager"}, "compile:regional", 0.05, 2),
        ({"compile": "full", "compile_backend": "eager"}, "compile:full", 0.05, 2),
    ],
)
def test_each_speed_path_draws_the_plain_paths_pictures(plain, speed, named, mean_max, worst_max):
    images, core = _grid(_config(**speed))
    assert named in core.info.speed
    difference = np.abs(images - plain)
    assert difference.mean() <= mean_max, f"{named}: mean difference {difference.mean():.3f}"
    assert difference.max() <= worst_max, f"{named}: largest difference {difference.max():.0f}"


@pytest.mark.slow
@pytest.mark.usefixtures("fresh_dynamo")
def test_inductor_regional_compile_matches_and_fills_the_persistent_cache(plain, tmp_path):
    # The real compiler (C++ code generation on the CPU; Triton on a GPU), not a stand-in backend.
    cache = tmp_path / "compile-cache"
    images, core = _grid(_config(compile="regional", compile_cache_dir=str(cache)))
    assert "compile:regional" in core.info.speed
    assert np.abs(images - plain).max() <= 2
    # The FX graph cache wrote the compiled graphs where the next start will look for them...
    assert any((cache / "fxgraph").rglob("*")), "no compiled graph was cached"
    # ...and an engine started afresh (dynamo's in-process state gone) takes them from there.
    torch._dynamo.reset()
    hits = counters["inductor"]["fxgraph_cache_hit"]
    again, _ = _grid(_config(compile="regional", compile_cache_dir=str(cache)))
    assert counters["inductor"]["fxgraph_cache_hit"] > hits
    assert np.array_equal(again, images)


def test_every_speed_path_at_once_still_draws_the_same_picture(plain):
    speed = {"fuse_qkv": True, "channels_last": True, "fp8": "weights", "compile": "regional"}
    images, core = _grid(_config(**speed, compile_backend="eager"))
    assert {"fused-qkv", "channels-last", "fp8:weights", "compile:regional"} <= set(core.info.speed)
    assert np.abs(images - plain).mean() <= 2.0


def _graphs() -> int:
    return counters["stats"]["unique_graphs"]


@pytest.fixture
def fresh_dynamo():
    # Dynamo keeps compiled code per function (every block instance of every model in this process
    # shares it), so earlier tests' compilations would hide what a fresh engine process compiles.
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.usefixtures("fresh_dynamo")
def test_warm_up_compiles_every_aspect_bucket_and_the_first_job_compiles_nothing():
    core = EngineCore(EngineConfig(model="tiny", device="cpu", compile="regional", compile_backend="eager"))
    info = core.load()
    buckets = aspect_buckets(info.native_width, info.native_height, info.size_step)
    assert core.warmed[1:] == buckets  # after the one small job every warm-up runs
    assert info.warmup_s is not None and info.warmup_s > 0
    before = _graphs()
    finish(core, imagine(width=176, height=96))  # --ar 16:9, four seeds, as a user's first job
    finish(core, imagine(width=128, height=128, steps=6))
    assert _graphs() == before, "a job after the warm-up compiled a new graph"


@pytest.mark.usefixtures("fresh_dynamo")
def test_without_warm_up_the_first_job_pays_for_compilation():
    # The control for the test above: the counter does see compilations when nothing was warmed.
    core = EngineCore(_config(compile="regional", compile_backend="eager"))
    core.load()
    before = _graphs()
    finish(core, imagine(width=176, height=96))
    assert _graphs() > before


def test_cuda_graphs_on_a_cpu_are_refused_with_a_log_line_and_change_nothing(plain, caplog):
    with caplog.at_level(logging.WARNING, logger="engine.speed"):
        images, core = _grid(_config(compile="regional", compile_backend="eager", cuda_graphs=True))
    assert "cuda-graphs" not in core.info.speed and not core.model.cuda_graphs
    assert "CUDA graphs need a CUDA GPU" in caplog.text
    assert np.abs(images - plain).max() <= 2


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"dtype": "float64"},
            "EngineConfig.dtype='float64' is not valid; use one of auto, float32, bfloat16, float16",
        ),
        ({"compile": "max"}, "EngineConfig.compile='max' is not valid; use one of off, regional, full"),
        ({"fp8": "e5m2"}, "EngineConfig.fp8='e5m2' is not valid; use one of off, weights, matmul"),
        ({"cuda_graphs": True}, "EngineConfig.cuda_graphs needs compile='regional' or 'full'"),
    ],
)
def test_a_bad_speed_field_names_itself_and_what_it_accepts(fields, message):
    with pytest.raises(ValueError) as caught:
        _config(**fields)
    assert str(caught.value).startswith(message)


def test_float8_weights_stay_float8_when_the_model_is_cast():
    # diffusers casts whole models (`from_pipe`, the VAE upcast); the float8 bytes must survive it.
    layer = torch.nn.Sequential(torch.nn.Linear(32, 48))
    x = torch.randn(16, 32)
    expected = layer(x)
    assert quantize_fp8(layer, matmul=False) == 1
    layer.to(torch.bfloat16).to(torch.float32)
    quantised = layer[0]
    assert isinstance(quantised, Float8Linear) and quantised.weight_bits.dtype == torch.uint8
    assert quantised.weight_bits.numel() == 32 * 48  # one byte a weight
    relative = (layer(x) - expected).abs().max() / expected.abs().max()
    assert relative < 0.1  # e4m3 keeps 3 mantissa bits: about 6% per weight at worst
