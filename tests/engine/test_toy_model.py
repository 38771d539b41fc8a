"""The shipped `toy` model draws what the prompt asks: semantic checks in pixels.

The pictures are judged by `engine.training.checker` (hue masses and centroids). Each check uses
a few cells with fixed seeds and asks for a clear majority, so a model that ignored the words would
fail them all, while one unlucky cell does not.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from engine.api import EngineConfig, ImageData, ImagineRequest, OutpaintRequest, PromptSpec
from engine.core import EngineCore
from engine.models import ModelLoadError, load_model
from engine.presets import PRESET_HINT, PRESETS
from engine.sources import packaged_model_dir
from engine.training import bench, checker
from tests.engine.conftest import finish, pixels


@pytest.fixture(scope="module")
def toy() -> EngineCore:
    core = EngineCore(EngineConfig(model="toy", device="cpu", warmup=False))
    core.load()
    return core


def grid(core: EngineCore, text: str, seed: int, negative: tuple[str, ...] = (), **kw) -> list[np.ndarray]:
    request = ImagineRequest(
        job_id="t",
        prompt=PromptSpec.single(text, negative),
        seeds=tuple(seed + i for i in range(4)),
        width=kw.pop("width", 128),
        height=kw.pop("height", 128),
        **kw,
    )
    return [pixels(im).astype(np.uint8) for im in finish(core, request).images]


CASES = [
    ("a red circle on the left on a night sky", "red", "left", "night sky"),
    ("a blue square on the right on a plain background", "blue", "right", "plain"),
    ("a yellow star at the top on a night sky", "yellow", "top", "night sky"),
    ("a green triangle at the bottom on snow", "green", "bottom", "snow"),
]


@pytest.mark.parametrize(("text", "colour", "place", "background"), CASES)
def test_the_named_colour_is_drawn(toy, text, colour, place, background):
    cells = grid(toy, text, seed=11)
    coloured = [c for c in cells if checker.colour_drawn(c, colour, background)]
    assert len(coloured) >= 3, f"{text!r}: the colour was drawn in {len(coloured)} of 4 cells"


@pytest.mark.parametrize(("text", "colour", "place", "background"), CASES)
def test_the_named_colour_is_drawn_where_the_prompt_puts_it(toy, text, colour, place, background):
    cells = [c for c in grid(toy, text, seed=11) if checker.colour_drawn(c, colour, background)]
    placed = [c for c in cells if checker.place_matches(checker.place_of(c, colour), place)]
    assert len(placed) >= 3, f"{text!r}: {len(placed)} of 4 cells put it {place}"


@pytest.mark.parametrize(
    ("colour", "prompts"),
    [
        ("yellow", (("a sun on a day sky", 21), ("a star on a night sky", 25))),
        # Unnamed, trees are mostly green (autumn ones too): --no green must turn them.
        ("green", (("a tree on snow", 21), ("a tree on a plain background", 25))),
    ],
)
def test_no_colour_cuts_that_colour_from_objects_that_take_it(toy, colour, prompts):
    before = after = 0.0
    for text, seed in prompts:
        before += sum(checker.masses(c)[colour].fraction for c in grid(toy, text, seed))
        after += sum(checker.masses(c)[colour].fraction for c in grid(toy, text, seed, negative=(colour,)))
    assert before > 0.01, f"these prompts should draw some {colour} without --no"
    assert after < 0.4 * before, f"--no {colour} kept {after / before:.0%} of the {colour}"


def test_zoom_out_keeps_the_source_in_the_centre_and_continues_the_background(toy):
    text = "a red circle in the centre on a night sky"
    source = grid(toy, text, seed=31)[0]
    request = OutpaintRequest(
        job_id="z",
        source=ImageData.from_pil(_pil(source)),
        prompt=PromptSpec.single(text),
        seeds=(1, 2, 3, 4),
        zoom=2.0,
    )
    for image in finish(toy, request).images:
        z = pixels(image).astype(np.uint8)
        h, w = z.shape[:2]
        centre = np.asarray(_pil(z[h // 4 : h - h // 4, w // 4 : w - w // 4]).resize((w, h)))
        assert np.abs(centre.astype(int) - source.astype(int)).mean() < 20
        ring = np.ones((h, w), bool)
        ring[h // 4 : h - h // 4, w // 4 : w - w // 4] = False
        labels = checker.classify(z)[ring]
        sky = [checker.INDEX[n] for n in checker.BACKGROUND_COLOURS["night sky"]]
        assert np.isin(labels, sky).mean() > 0.7, "the new border should be night sky"


def test_an_aspect_ratio_draws_at_that_shape(toy):
    [cell, *_] = grid(toy, "a boat at sea", seed=3, width=176, height=96)
    assert cell.shape[:2] == (96, 176)


def _pil(rgb: np.ndarray):

    return Image.fromarray(rgb)


def test_the_pipeline_draws_without_the_renderer(tmp_path):
    """Nothing at inference imports the world's renderer or captions: the pictures come from the
    denoising loop alone."""
    script = textwrap.dedent(
        """
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.startswith("engine.training"):
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        from engine.api import EngineConfig, ImagineRequest, PromptSpec, Finished
        from engine.core import EngineCore
        core = EngineCore(EngineConfig(model="toy", device="cpu", warmup=False))
        core.load()
        events = []
        core.run(ImagineRequest(job_id="j", prompt=PromptSpec.single("a red circle"), seeds=(1, 2, 3, 4),
                                width=128, height=128, steps=2), events.append, lambda: False)
        assert isinstance(events[-1], Finished), events[-1]
        assert not [m for m in sys.modules if m.startswith("engine.training")]
        print("ok")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]


def test_the_toy_weights_are_small_and_in_the_package():
    folder = packaged_model_dir(PRESETS["toy"])
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    assert size <= 8 * 1024 * 1024
    assert (folder / "model_index.json").is_file()


def test_a_missing_or_damaged_weights_folder_is_one_sentence_naming_it(tmp_path):
    with pytest.raises(ModelLoadError, match=r"no model_index\.json"):
        load_model(str(tmp_path), device="cpu")
    copy = tmp_path / "toy"
    shutil.copytree(packaged_model_dir(PRESETS["toy"]), copy)
    weights = copy / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # truncated, as by a full disk
    with pytest.raises(ModelLoadError) as caught:
        load_model(str(copy), device="cpu")
    assert str(copy) in str(caught.value) and "damaged" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_toy_model_folder_runs_with_the_toy_presets_defaults_wherever_it_is(tmp_path):
    # The training's export writes imagine-preset.txt; the shipped folder has it as well.
    copy = tmp_path / "retrained"
    shutil.copytree(packaged_model_dir(PRESETS["toy"]), copy)
    toy = PRESETS["toy"]
    model = load_model(str(copy), device="cpu")
    assert model.preset == dataclasses.replace(toy, name=str(copy), source=str(copy))
    (copy / PRESET_HINT).unlink()  # a folder that names nothing gets its family's defaults
    assert load_model(str(copy), device="cpu").preset.default_steps == PRESETS["sd15"].default_steps


@pytest.mark.parametrize(
    ("named", "message"),
    [
        ("toy-v2", "names 'toy-v2', which is not a preset (toy, tiny"),
        ("sdxl", "names the 'sdxl' preset (sdxl), but the folder holds an sd model"),
        ("sd15", "names the 'sd15' preset (512 px), but the folder's model draws 128 px"),
    ],
)
def test_a_folder_naming_a_wrong_preset_is_refused_with_a_sentence(tmp_path, named, message):
    copy = tmp_path / "toy"
    shutil.copytree(packaged_model_dir(PRESETS["toy"]), copy)
    (copy / PRESET_HINT).write_text(named + "\n")
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        load_model(str(copy), device="cpu")


def test_the_benchmark_prints_every_goal_with_its_verdict(tmp_path, capsys):
    # `python -m engine.training.bench --quick`: every figure the issue asks for, each goal marked.
    assert bench.main(["--quick", "--json", str(tmp_path / "figures.json")]) == 0
    printed = capsys.readouterr().out
    for goal in bench.GOALS:
        assert re.search(rf"^{goal}\s+[\d.]+\s+(>=|<=) [\d.]+\s+(met|NOT met)$", printed, re.M), goal
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["same_seed_identical"] == 1.0
    assert figures["upscale_size"] == 256
