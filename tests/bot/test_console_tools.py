"""`imagine blend`, `shorten`, `describe` and `pick` end to end: the real `tiny` engine in its
spawned process (so the new requests and answers cross the pipe), with a tiny random BLIP as the
operator's captioner, and the real store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import pytest_asyncio
from PIL import Image

from bot.console import run_console
from engine.api import EngineConfig
from engine.local import LocalEngine
from tests.support.tiny_captioner import build_tiny_captioner

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]


@pytest.fixture(scope="module")
def captioner(tmp_path_factory) -> Path:
    return build_tiny_captioner(tmp_path_factory.mktemp("captioner"))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine(captioner):
    engine = LocalEngine(EngineConfig(model="tiny", device="cpu", captioner=str(captioner)))
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("console-tools")
    for name, colour, size in (("red", (220, 30, 30), (96, 64)), ("blue", (30, 30, 220), (64, 96))):
        Image.new("RGB", size, colour).save(folder / f"{name}.png")
    (folder / "notes.png").write_text("not a picture")
    return folder


async def console(engine, folder: Path, *argv: str, captioner: Path | None = None) -> tuple[int, str, str]:
    environ = {"IMAGINE_DATA_DIR": str(folder / "data"), "IMAGINE_DEVICE": "cpu"}
    if captioner is not None:
        environ["IMAGINE_CAPTIONER"] = str(captioner)
    out, err = io.StringIO(), io.StringIO()
    code = await run_console(list(argv), stdout=out, stderr=err, environ=environ, engine=engine)
    return code, out.getvalue(), err.getvalue()


async def test_shorten_prints_the_ranking_and_pick_runs_a_prompt(engine, folder):
    code, out, err = await console(
        engine, folder, "shorten", "a red lighthouse on a hill at dusk --seed 3", "--json"
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["kind"] == "shorten" and answer["status"] == "done"
    assert sorted(word for word, _ in answer["ranking"]) == sorted(
        ["a", "red", "lighthouse", "on", "a", "hill", "at", "dusk"]
    )
    assert 1 <= len(answer["prompts"]) <= 5 and all(p.endswith("--seed 3") for p in answer["prompts"])

    code, out, err = await console(engine, folder, "pick", answer["job_id"], "1", "--json")
    assert code == 0, err
    job = json.loads(out)
    assert job["kind"] == "imagine" and job["parent_id"] == answer["job_id"] and len(job["images"]) == 4

    code, out, _ = await console(engine, folder, "show", answer["job_id"])
    assert "words by how far dropping each moves" in out and "1. " in out


async def test_describe_gives_four_prompts_from_the_captioner(engine, folder, captioner):
    code, out, err = await console(
        engine, folder, "describe", str(folder / "red.png"), "--json", captioner=captioner
    )
    assert code == 0, err
    answer = json.loads(out)
    assert answer["kind"] == "describe" and len(answer["prompts"]) == 4 and len(set(answer["prompts"])) == 4


async def test_describe_without_a_captioner_says_what_to_configure(engine, folder):
    code, _, err = await console(engine, folder, "describe", str(folder / "red.png"))
    assert code == 2 and "IMAGINE_CAPTIONER" in err


async def test_blend_makes_a_landscape_grid_from_two_files(engine, folder):
    code, out, err = await console(
        engine,
        folder,
        "blend",
        str(folder / "red.png"),
        str(folder / "blue.png"),
        "--dimensions",
        "landscape",
        "--json",
    )
    assert code == 0, err
    job = json.loads(out)
    assert job["kind"] == "blend" and job["status"] == "done" and job["width"] > job["height"]
    assert len(job["images"]) == 4 and job["grid"]
    code, out, err = await console(engine, folder, "reroll", job["job_id"], "--json")
    assert code == 0, err and json.loads(out)["kind"] == "blend"


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        (["red.png"], "at least 2 images; you gave 1"),
        (["red.png", "missing.png"], "cannot read image 2"),
        (["red.png", "notes.png"], "image 2"),
    ],
)
async def test_bad_blends_exit_2_with_one_sentence(engine, folder, images, expected):
    code, out, err = await console(engine, folder, "blend", *[str(folder / name) for name in images])
    assert code == 2 and expected in err and out == ""


async def test_a_style_reference_without_an_adapter_says_what_to_configure(engine, folder):
    code, out, err = await console(engine, folder, "run", "a cat --sref https://example.com/style.png")
    assert code == 2 and "IMAGINE_IP_ADAPTER" in err and out == ""
