"""The console on the default model: no IMAGINE_MODEL, the shipped toy model draws the prompt, and a
word it never learned is named once, without failing the job."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from bot.console import run_console
from bot.settings import Settings
from engine.training import checker


async def test_the_default_model_is_toy_and_draws_the_prompt(tmp_path):
    environ = {"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_DEVICE": "cpu"}  # no IMAGINE_MODEL
    assert Settings.from_env(environ).engine_config().model == "toy"
    out, err = io.StringIO(), io.StringIO()
    code = await run_console(
        ["run", "a red dragon and a red circle on the left on a night sky --seed 5", "--json"],
        stdout=out,
        stderr=err,
        environ=environ,
    )
    assert code == 0, err.getvalue()
    job = json.loads(out.getvalue())
    assert job["status"] == "done" and (job["width"], job["height"]) == (128, 128)
    assert err.getvalue().count("does not know dragon") == 1
    reds = 0
    for path in job["images"]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        reds += checker.colour_drawn(rgb, "red", "night sky")
    assert reds >= 3
