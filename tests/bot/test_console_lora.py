"""LoRA styles from the console: IMAGINE_LORA_DIR, the spawned tiny engine, `--lora`, the stored PNG."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from bot.console import run_console
from tests.support.tiny_lora import write_tiny_lora


@pytest.fixture
def lora_dir(tmp_path) -> Path:
    folder = tmp_path / "loras"
    write_tiny_lora(folder, "ink", seed=1)
    write_tiny_lora(folder, "Neon-2", seed=2)
    return folder


@pytest.mark.slow  # a spawned engine that loads LoRA weights (10 s): the full lane runs it
async def test_the_console_runs_a_style_and_refuses_an_unknown_one(lora_dir, tmp_path):
    """End to end: IMAGINE_LORA_DIR, the spawned engine, the prompt's --lora, the stored picture."""
    environ = {
        "IMAGINE_DATA_DIR": str(tmp_path),
        "IMAGINE_DEVICE": "cpu",
        "IMAGINE_MODEL": "tiny",
        "IMAGINE_LORA_DIR": str(lora_dir),
    }

    async def console(*argv: str) -> tuple[int, dict]:
        out, err = io.StringIO(), io.StringIO()
        code = await run_console([*argv, "--json"], stdout=out, stderr=err, environ=environ)
        return code, json.loads(out.getvalue())

    code, plain = await console("run", "a fox --seed 5 --quality .25")
    assert code == 0, plain
    code, inked = await console("run", "a fox --seed 5 --quality .25 --lora ink:0.8")
    assert code == 0 and inked["status"] == "done"
    difference = np.abs(
        np.asarray(PILImage.open(inked["images"][0]), dtype=float)
        - np.asarray(PILImage.open(plain["images"][0]))
    ).mean()
    assert difference > 1.0
    assert "--lora ink:0.8" in PILImage.open(inked["images"][0]).text["prompt"]
    code, refused = await console("run", "a fox --lora oil")
    assert (
        code == 2 and "`--lora oil` is not a style installed here; installed: ink, neon-2" in refused["error"]
    )
