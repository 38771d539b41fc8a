"""Recovery and shutdown with real processes: the installed `imagine` command, the `tiny` engine.

A console run is killed (SIGKILL, engine process and all) with one job running and others
queued; the next start finishes every one of them. SIGTERM is a graceful stop: the running job
goes back to `queued`, nothing is marked failed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

IMAGINE = shutil.which("imagine") or str(Path(sys.executable).parent / "imagine")


def env_for(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_")}
    env.update(IMAGINE_DATA_DIR=str(data_dir), IMAGINE_DEVICE="cpu")
    return env


def statuses(data_dir: Path) -> dict[str, tuple[str, int]]:
    database = data_dir / "imagine.db"
    if not database.exists():
        return {}
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            rows = connection.execute("SELECT id, status, attempts FROM jobs ORDER BY created_at").fetchall()
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    return {job_id: (status, attempts) for job_id, status, attempts in rows}


def wait_for_running(process: subprocess.Popen, data_dir: Path, jobs: int, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"imagine exited early: {process.communicate()}"
        state = statuses(data_dir)
        if len(state) == jobs and any(status == "running" for status, _ in state.values()):
            return state
        time.sleep(0.2)
    raise AssertionError(f"no job started running within {timeout}s: {statuses(data_dir)}")


def start(data_dir: Path, *argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [IMAGINE, *argv],
        env=env_for(data_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: the kill takes the engine process too
    )


def test_killed_with_jobs_running_and_queued_every_job_ends_done(tmp_path):
    data_dir = tmp_path / "data"
    process = start(data_dir, "run", "a {red, green, blue} lighthouse --seed 5 --quality .25", "--json")
    try:
        before = wait_for_running(process, data_dir, jobs=3)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=60)
    assert sorted(status for status, _ in before.values()) == ["queued", "queued", "running"]

    resumed = subprocess.run(
        [IMAGINE, "resume", "--json"], env=env_for(data_dir), capture_output=True, text=True, timeout=400
    )
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert [job["job_id"] for job in report["jobs"]] == list(before)  # the original order
    assert all(job["status"] == "done" and len(job["images"]) == 4 for job in report["jobs"])
    for job in report["jobs"]:
        assert all(Path(path).is_file() for path in [*job["images"], job["grid"]])
    after = statuses(data_dir)
    assert {status for status, _ in after.values()} == {"done"}
    assert all(attempts == 1 for _, attempts in after.values())  # the interrupted try is not counted

    again = subprocess.run(
        [IMAGINE, "resume"], env=env_for(data_dir), capture_output=True, text=True, timeout=400
    )
    assert again.returncode == 0 and "nothing to resume" in again.stdout


def test_sigterm_stops_gracefully_and_the_running_job_goes_back_to_queued(tmp_path):
    data_dir = tmp_path / "data"
    process = start(data_dir, "run", "a slow lighthouse --seed 9 --quality 2")
    try:
        wait_for_running(process, data_dir, jobs=1)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130
    assert "interrupted" in err and "imagine resume" in err
    [(status, attempts)] = statuses(data_dir).values()
    assert (status, attempts) == ("queued", 0)
