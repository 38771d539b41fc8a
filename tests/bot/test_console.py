"""The `imagine` console end to end: real store, the real `tiny` engine in its spawned process.

The console runs in this process (`run_console`, output captured) against one engine started
for the whole module, so each command costs only its own job. One test runs the installed
`imagine` script as a subprocess.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image

from bot.console import JOB_FIELDS, run_console
from engine.api import EngineConfig
from engine.local import LocalEngine
from storage.store import Store

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

# Small enough that upscaling an upscale is refused: a real engine failure to report.
MAX_PIXELS = 400 * 400


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine():
    engine = LocalEngine(EngineConfig(model="tiny", device="cpu", max_pixels=MAX_PIXELS))
    await engine.start()
    yield engine
    await engine.close()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("console") / "data"


class TerminalIO(io.StringIO):
    """A captured stderr that says it is a terminal, so the console draws its progress bar."""

    def isatty(self) -> bool:
        return True


class Console:
    def __init__(self, engine: LocalEngine, data_dir: Path) -> None:
        self.engine = engine
        self.environ = {"IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_DEVICE": "cpu"}

    async def __call__(self, *argv: str, tty: bool = False) -> tuple[int, str, str]:
        out, err = io.StringIO(), (TerminalIO() if tty else io.StringIO())
        code = await run_console(list(argv), stdout=out, stderr=err, environ=self.environ, engine=self.engine)
        return code, out.getvalue(), err.getvalue()

    async def json(self, *argv: str, expect: int = 0) -> dict:
        code, out, err = await self(*argv, "--json")
        assert code == expect, err
        lines = out.strip().splitlines()
        assert len(lines) == 1, out  # one JSON object
        return json.loads(lines[0])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def imagine(engine, data_dir) -> Console:
    return Console(engine, data_dir)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def grid(imagine) -> dict:
    return await imagine.json("run", "a lighthouse at dusk --ar 16:9 --seed 42 --quality .25")


def png_size(path: str) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


async def test_run_prints_the_design_fields_and_writes_the_grid(grid):
    assert tuple(grid) == JOB_FIELDS
    assert (grid["kind"], grid["status"], grid["parent_id"], grid["error"]) == ("imagine", "done", None, None)
    assert grid["seeds"] == [42, 43, 44, 45]
    assert grid["width"] > grid["height"]  # --ar 16:9
    assert len(grid["images"]) == 4
    for path in grid["images"]:
        assert Path(path).is_absolute() and png_size(path) == (grid["width"], grid["height"])
    assert png_size(grid["grid"]) == (2 * grid["width"], 2 * grid["height"])


async def test_text_output_names_the_job_and_the_grid(imagine, grid):
    code, out, err = await imagine("reroll", grid["job_id"], tty=True)
    assert code == 0, err
    assert "starting the engine" in err and "] 1/" in err and "\r[" not in out  # the bar, on stderr only
    first, second = out.splitlines()[:2]
    assert first.startswith("job ") and ": done (reroll," in first
    job_id = first.split()[1].rstrip(":")
    assert job_id != grid["job_id"]
    assert second.strip().startswith("grid:") and Path(second.split()[-1]).is_file()


async def test_derived_commands_act_on_a_grid_cell(imagine, grid):
    job = grid["job_id"]
    w, h = grid["width"], grid["height"]
    up = await imagine.json("upscale", job, "2")
    assert (up["kind"], up["parent_id"], len(up["images"]), up["grid"]) == ("upscale_subtle", job, 1, None)
    assert (up["width"], up["height"]) == (2 * w, 2 * h) == png_size(up["images"][0])
    vary = await imagine.json("vary", job, "1", "--subtle")
    assert (vary["kind"], len(vary["images"]), vary["grid"] is not None) == ("vary_subtle", 4, True)
    assert (vary["width"], vary["height"]) == (w, h)
    zoom = await imagine.json("zoom", job, "3", "1.5")
    assert (zoom["kind"], len(zoom["images"]), (zoom["width"], zoom["height"])) == ("zoom", 4, (w, h))
    pan = await imagine.json("pan", job, "4", "left")
    assert pan["kind"] == "pan" and len(pan["images"]) == 4 and pan["width"] > w
    square = await imagine.json("square", job, "1")
    assert square["kind"] == "square" and square["width"] == square["height"]


async def test_single_image_jobs_take_no_index_and_engine_failures_exit_1(imagine, grid):
    up = await imagine.json("upscale", grid["job_id"], "1", "--creative")
    assert up["kind"] == "upscale_creative"
    refused = await imagine.json("vary", up["job_id"], "1", expect=2)
    assert "single image; leave the image index out" in refused["error"]
    # 2x again is over this engine's pixel limit: the job fails, the JSON says why, exit 1.
    failed = await imagine.json("upscale", up["job_id"], expect=1)
    assert failed["status"] == "failed" and failed["error"]
    assert failed["images"] == [] and failed["grid"] is None


async def test_history_and_show_read_the_store(imagine, grid):
    history = await imagine.json("history", "--limit", "50")
    ids = [job["job_id"] for job in history["jobs"]]
    assert grid["job_id"] in ids
    assert all(set(JOB_FIELDS) <= set(job) for job in history["jobs"])
    created = [job["created_at"] for job in history["jobs"]]
    assert created == sorted(created, reverse=True)  # newest first
    assert len((await imagine.json("history", "--user", "0", "--limit", "2"))["jobs"]) == 2
    assert (await imagine.json("history", "--user", "12345"))["jobs"] == []

    vary = await imagine.json("vary", grid["job_id"], "2")
    shown = await imagine.json("show", vary["job_id"])
    assert shown["job_id"] == vary["job_id"] and shown["prompt"].startswith("a lighthouse at dusk")
    assert [job["job_id"] for job in shown["ancestors"]] == [grid["job_id"]]
    root = await imagine.json("show", grid["job_id"])
    assert vary["job_id"] in [job["job_id"] for job in root["descendants"]]

    code, out, _ = await imagine("show", vary["job_id"])
    assert code == 0 and "lineage:" in out
    assert f"{grid['job_id']} imagine [done]" in out and f"{vary['job_id']} vary_strong of image 2" in out
    code, out, _ = await imagine("history", "--limit", "3")
    assert code == 0 and len(out.splitlines()) == 3 and vary["job_id"] in out


async def test_remix_prompts_drive_reroll_vary_and_pan_and_show_prints_both_prompts(imagine, grid):
    parent = grid["job_id"]
    reroll = await imagine.json("reroll", parent, "--prompt", "a lighthouse at dawn --ar 16:9 --seed 7")
    assert (reroll["kind"], reroll["parent_id"], reroll["seeds"]) == ("reroll", parent, [7, 8, 9, 10])
    vary = await imagine.json("vary", parent, "2", "--prompt", "a lighthouse in fog --ar 16:9")
    pan = await imagine.json("pan", parent, "1", "up", "--prompt", "a lighthouse under stars --ar 16:9")
    assert (vary["kind"], pan["kind"]) == ("vary_strong", "pan")

    shown = await imagine.json("show", vary["job_id"])
    assert shown["prompt"] == "a lighthouse in fog --ar 16:9"
    assert shown["remixed_from"] == "a lighthouse at dusk --ar 16:9 --quality 0.25 --seed 42"
    assert shown["parameters"].startswith("a lighthouse in fog\n")
    assert (
        f"Seed: {shown['seeds'][0]}," in shown["parameters"]
        and "Imagine kind: vary_strong" in shown["parameters"]
    )
    code, out, _ = await imagine("show", pan["job_id"])
    assert code == 0 and "  prompt: a lighthouse under stars --ar 16:9" in out
    assert "  parameters (as saved in the PNG):\n    a lighthouse under stars\n    Seed: " in out
    assert "  seeds: " in out
    assert "  remixed from: a lighthouse at dusk --ar 16:9 --quality 0.25 --seed 42" in out

    refused = await imagine.json("pan", parent, "1", "up", "--prompt", "a lighthouse --ar 1:1", expect=2)
    assert "`--ar` does not apply to a pan" in refused["error"]
    refused = await imagine.json("vary", parent, "1", "--prompt", "a lighthouse --repeat 4", expect=2)
    assert "`--repeat` does not apply to a variation" in refused["error"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("run", "a cat --chaos 500"), "--chaos"),
        (("run", "a cat --v 6"), "--v 6 is not a version this bot knows"),
        (("vary", "no-such-job", "1"), "there is no job 'no-such-job'"),
        (("show", "no-such-job"), "there is no job 'no-such-job'"),
        (("vary", "{grid}", "5"), "image 5 is out of range"),
        (("vary", "{grid}"), "pick one with an index 1-4"),
        (("vary", "{grid}", "two"), "INDEX must be a whole number from 1 to 4"),
        (("zoom", "{grid}", "1", "3"), "zoom must be a number from 1.0 to 2.0"),
        (("zoom", "{grid}", "1", "wide"), "FACTOR must be a number from 1.0 to 2.0"),
        (("pan", "{grid}", "1", "north"), "pan direction must be one of left, right, up, down"),
        (("history", "--limit", "0"), "--limit must be from 1 to 500"),
        (("history", "--user", "bob"), "--user takes a user id"),
    ],
)
async def test_errors_print_one_line_and_exit_2(imagine, grid, argv, message):
    argv = tuple(grid["job_id"] if arg == "{grid}" else arg for arg in argv)
    code, out, err = await imagine(*argv)
    assert code == 2
    assert out == "" and err.count("\n") == 1 and err.startswith("imagine: error: ") and message in err
    as_json = await imagine.json(*argv, expect=2)
    assert tuple(as_json) == JOB_FIELDS and message in as_json["error"] and as_json["job_id"] is None


async def test_a_bad_setting_is_named(engine, data_dir):
    out, err = io.StringIO(), io.StringIO()
    code = await run_console(
        ["history"],
        stdout=out,
        stderr=err,
        environ={"IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_DEVICE": "tpu"},
    )
    assert code == 2 and "IMAGINE_DEVICE='tpu' is not valid" in err.getvalue()


async def test_db_upgrade_and_the_installed_command(data_dir, grid):
    imagine_bin = shutil.which("imagine") or str(Path(__file__).parents[2] / ".venv" / "bin" / "imagine")
    env = {"IMAGINE_DATA_DIR": str(data_dir), "PATH": str(Path(imagine_bin).parent), "HOME": str(data_dir)}

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([imagine_bin, *argv], env=env, capture_output=True, text=True, timeout=120)

    done = run("db", "upgrade", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "up to date"
    shown = run("show", grid["job_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["grid"] == grid["grid"]
    missing = run("show", "nope")
    assert missing.returncode == 2 and missing.stderr == "imagine: error: there is no job 'nope'\n"

    # `imagine history | head` with a reader that is gone: a quiet stop, no traceback.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        closed = subprocess.run(
            [imagine_bin, "history", "--json"], env=env, stdout=write_end, stderr=subprocess.PIPE, timeout=120
        )
    finally:
        os.close(write_end)
    assert closed.returncode == 1 and closed.stderr == b"", closed.stderr.decode()


async def test_an_engine_crash_mid_job_is_retried_once_and_the_job_ends_done(imagine, engine, data_dir):

    store = await Store.open(None, data_dir)
    try:
        run = asyncio.create_task(imagine.json("run", "a crash test --seed 3"))
        for _ in range(2400):
            if [job for job in await store.pending_jobs() if job.status == "running"]:
                break
            assert not run.done(), run.result()
            await asyncio.sleep(0.05)
        pid = engine.worker_pid
        os.kill(pid, signal.SIGKILL)  # the engine process dies mid-job
        result = await asyncio.wait_for(run, 300)
        assert result["status"] == "done" and len(result["images"]) == 4
        row = await store.get_job(result["job_id"])
        assert row.attempts == 2 and engine.worker_pid != pid
    finally:
        await store.close()


async def test_run_leaves_earlier_unfinished_jobs_to_resume(imagine, data_dir):
    """A new `run` neither re-runs nor waits on a job an earlier console left queued."""

    store = await Store.open(None, data_dir)
    try:
        leftover = await store.create_job(
            kind="imagine",
            user_id=0,
            user_name="earlier",
            source="console",
            raw_prompt="left over --seed 9",
            prompt="left over --seed 9",
        )
        code, out, err = await imagine("run", "a fresh one --seed 5 --quality .25", "--json")
        assert code == 0, err
        assert json.loads(out)["status"] == "done"
        assert "1 earlier console job(s) were left unfinished" in err and "imagine resume" in err
        assert (await store.get_job(leftover.id)).status == "queued"  # untouched by `run`
        await store.fail_job(leftover.id, "test clean-up", status="cancelled")
    finally:
        await store.close()


async def test_jobs_batched_together_give_the_pictures_they_give_alone(engine, tmp_path):
    """Three prompts from `{}` wait together; a batching engine runs them in shared UNet calls."""
    prompt = "a {red, green, blue} lighthouse --seed 5 --quality .5"
    alone = Console(engine, tmp_path / "alone")  # the module's engine: one job at a time on a CPU
    code, out, err = await alone("run", prompt, "--json")
    assert code == 0, err
    expected = [json.loads(line) for line in out.splitlines()]

    batching = LocalEngine(EngineConfig(model="tiny", device="cpu", max_pixels=MAX_PIXELS, batch_jobs=4))
    await batching.start()
    try:
        assert batching.slots == 8  # one batch running, the next gathering
        code, out, err = await Console(batching, tmp_path / "batched")("run", prompt, "--json")
    finally:
        await batching.close()
    assert code == 0, err
    got = [json.loads(line) for line in out.splitlines()]

    assert [job["status"] for job in got] == ["done"] * 3
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["seeds"] == theirs["seeds"] == [5, 6, 7, 8]
        with Image.open(mine["grid"]) as a, Image.open(theirs["grid"]) as b:
            difference = np.abs(np.asarray(a, dtype=np.int16) - np.asarray(b, dtype=np.int16))
        assert difference.max() <= 1  # the same picture, to the last rounding
    with sqlite3.connect(tmp_path / "batched" / "imagine.db") as db:
        shared = [json.loads(t).get("batch_jobs") for (t,) in db.execute("SELECT timings FROM jobs")]
    assert max(n or 1 for n in shared) >= 2, shared  # the ones waiting together did share a batch


async def test_region_redraws_the_masked_part_of_an_upscale_and_keeps_the_rest(imagine, grid, tmp_path):
    up = await imagine.json("upscale", grid["job_id"], "3")
    w, h = up["width"], up["height"]
    plane = Image.new("L", (w, h), 0)
    plane.paste(255, (w // 4, h // 4, w // 2, h // 2))
    mask = tmp_path / "mask.png"
    plane.save(mask)
    region = await imagine.json("region", up["job_id"], "--mask", str(mask), "--prompt", "a red boat")
    assert (region["kind"], region["parent_id"], len(region["images"])) == ("region", up["job_id"], 4)
    with Image.open(up["images"][0]) as before, Image.open(region["images"][0]) as after:
        kept = np.asarray(plane) == 0
        assert np.array_equal(np.asarray(after.convert("RGB"))[kept], np.asarray(before.convert("RGB"))[kept])
    refused = await imagine.json("region", grid["job_id"], "--mask", str(mask), expect=2)
    assert "works on an upscaled image" in refused["error"]
    missing = await imagine.json("region", up["job_id"], "--mask", str(tmp_path / "nope.png"), expect=2)
    assert "cannot read the mask" in missing["error"]
