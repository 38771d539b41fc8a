"""The console on the default model: no IMAGINE_MODEL, the shipped toy model draws the prompt, and a
word it never learned is named once, without failing the job."""

from __future__ import annotations

import io
import json
import math

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


async def test_remix_changing_red_to_blue_draws_a_blue_object_in_the_same_place(tmp_path):
    """Issue 14's semantic check: a remixed Vary (Strong) keeps the picture's layout and takes the
    new colour. The red object of the source cell and the blue one of each variation sit together."""
    environ = {"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_DEVICE": "cpu"}

    async def console(*argv: str) -> dict:
        out, err = io.StringIO(), io.StringIO()
        code = await run_console([*argv, "--json"], stdout=out, stderr=err, environ=environ)
        assert code == 0, err.getvalue()
        return json.loads(out.getvalue())

    def rgb(path: str) -> np.ndarray:
        return np.asarray(Image.open(path).convert("RGB"))

    # Remix edits one word, as a member would: the colour; the rest of the prompt stays.
    source = await console("run", "a red square on the left on snow --seed 3")
    index, red = next(
        (n, checker.place_of(rgb(path), "red"))
        for n, path in enumerate(source["images"])
        if checker.colour_drawn(rgb(path), "red", "snow")
    )
    assert red is not None
    # The seed in the remixed prompt makes the variations the same on every run.
    blue = "a blue square on the left on snow --seed 10"
    remixed = await console("vary", source["job_id"], str(index + 1), "--strong", "--prompt", blue)
    assert remixed["parent_id"] == source["job_id"] and remixed["seeds"] == [10, 11, 12, 13]
    blue_in_place = red_left = 0
    for path in remixed["images"]:
        picture = rgb(path)
        blue = checker.place_of(picture, "blue")
        if checker.colour_drawn(picture, "blue", "snow") and blue is not None:
            blue_in_place += math.dist(blue, red) < 0.2  # a fifth of the picture's side
        red_left += checker.colour_drawn(picture, "red", "snow")
    assert blue_in_place >= 3, f"{blue_in_place} of 4 variations drew the blue object where the red one was"
    assert red_left == 0


async def test_prompt_options_from_the_console(tmp_path):
    environ = {"IMAGINE_DATA_DIR": str(tmp_path), "IMAGINE_DEVICE": "cpu"}

    async def console(*argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = await run_console(list(argv), stdout=out, stderr=err, environ=environ)
        return code, out.getvalue(), err.getvalue()

    assert await console("option", "set", "wide", "--ar 2:1 --quality .25") == (
        0,
        "--wide now stands for --ar 2:1 --quality .25\n",
        "",
    )
    code, out, _ = await console("option", "list")
    assert out == "--wide = --ar 2:1 --quality .25\n"
    code, _, err = await console("option", "set", "ar", "--stylize 5")
    assert code == 2 and "`--ar` is a parameter already" in err
    code, out, err = await console("run", "a red circle on snow --wide --seed 1", "--json")
    assert code == 0, err
    job = json.loads(out)
    assert job["width"] > job["height"]  # --wide's --ar 2:1
    assert (await console("option", "set", "wide"))[1] == "removed --wide\n"
