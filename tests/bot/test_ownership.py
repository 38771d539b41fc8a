"""A job has one owner at a time (issue 12, part 1).

Real SQLite files shared by real stores (each with its own connection pool, as two processes
have), a real holder process for the SIGKILL case, the stand-in engine for speed.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.console import run_console
from bot.core.dispatcher import Dispatcher
from bot.core.services import Services
from bot.settings import Settings
from storage.ownership import AnotherProcessRunningError, Owner, owner_gone, start_ticks
from storage.store import Store
from tests.support.lease_holder import stand_in_request
from tests.support.stand_in_engine import StandInEngine

ROOT = Path(__file__).resolve().parents[2]


async def _owned_jobs(store: Store, owner: Owner, count: int, source: str = "console") -> list[str]:
    jobs = [
        await store.create_job(kind="imagine", user_id=1, prompt="x", source=source, **owner.fields())
        for _ in range(count)
    ]
    return [job.id for job in jobs]


def _holder(data_dir: Path, count: int, lease_s: float) -> tuple[subprocess.Popen, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.lease_holder", str(data_dir), str(count), str(lease_s)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline()
    assert line, "the holder process exited before holding its jobs"
    return process, json.loads(line)["jobs"]


async def test_resume_during_a_live_run_takes_nothing_of_that_runs_and_exits(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    process, held = _holder(data_dir, 3, 30.0)
    try:
        stdout, stderr = io.StringIO(), io.StringIO()
        environ = {"IMAGINE_DATA_DIR": str(data_dir), "IMAGINE_DEVICE": "cpu"}
        engine = StandInEngine()
        code = await asyncio.wait_for(
            run_console(["resume"], stdout=stdout, stderr=stderr, environ=environ, engine=engine), 20
        )
        assert code == 0
        assert "left 3 job(s) alone" in stderr.getvalue() and all(job in stderr.getvalue() for job in held)
        assert "Traceback" not in stderr.getvalue()
        assert engine.seen == []  # none of the live run's jobs ran here
        async with await Store.open(None, data_dir) as store:
            jobs = [await store.get_job(job_id) for job_id in held]
        assert {job.status for job in jobs} <= {"queued", "running"}
        assert all(job.owner_id != "" and job.owner_id is not None for job in jobs)
        assert process.poll() is None  # the run still has them
    finally:
        process.kill()
        process.wait()


async def test_a_sigkilled_runs_jobs_are_taken_once_its_lease_expires(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    lease_s = 0.6
    process, held = _holder(data_dir, 2, lease_s)
    store = await Store.open(None, data_dir)
    try:
        await asyncio.sleep(2.5 * lease_s)  # longer than one lease: only the heartbeat keeps them held
        claim = await store.claim_pending(Owner(lease_s=lease_s))
        assert claim.taken == [] and {job.id for job in claim.left_alone} == set(held)
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at = time.monotonic()
        recoverer = Owner(lease_s=lease_s)
        taken: list[str] = []
        while not taken and time.monotonic() - killed_at < 5 * lease_s:
            taken = [job.id for job in (await store.claim_pending(recoverer)).taken]
            await asyncio.sleep(0.1)
        assert sorted(taken) == sorted(held)
        assert time.monotonic() - killed_at >= 0.0
        rows = [await store.get_job(job_id) for job_id in held]
        assert {row.status for row in rows} == {"queued"}  # the running one went back to queued
        assert {row.owner_id for row in rows} == {recoverer.id}
    finally:
        if process.poll() is None:
            process.kill()
        await store.close()


async def test_a_holder_killed_on_this_machine_is_known_gone_before_its_lease_runs_out(
    tmp_path: Path,
) -> None:
    """A bot restarted after `docker kill` or an OOM kill starts at once and takes the dead
    process's jobs: its owner id names a pid and start time that no live process has."""
    data_dir = tmp_path / "data"
    process, held = _holder(data_dir, 2, 60.0)  # a lease far longer than this test
    store = await Store.open(None, data_dir)
    try:
        holder = (await store.get_job(held[0])).owner_id
        await store.register_process(Owner(id=holder), "bot")  # the killed process was the bot
        assert (await store.claim_pending(Owner())).taken == []  # alive: nothing taken
        process.send_signal(signal.SIGKILL)
        process.wait()

        recoverer = Owner()
        await store.register_process(recoverer, "bot", exclusive=True)  # no "another bot is running"
        taken = [job.id for job in (await store.claim_pending(recoverer)).taken]
        assert sorted(taken) == sorted(held)
    finally:
        if process.poll() is None:
            process.kill()
        await store.close()


def test_an_owner_id_names_a_live_process_until_it_ends() -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host, _, _, token = Owner().id.split(":")
        theirs = f"{host}:{sleeper.pid}:{start_ticks(sleeper.pid)}:{token}"
        assert not owner_gone(Owner().id) and not owner_gone(theirs)
        assert owner_gone(f"{host}:{sleeper.pid}:1:{token}")  # same pid, another start: reused
        assert not owner_gone(f"another-host:{sleeper.pid}:1:{token}")  # elsewhere: the lease decides
        assert not owner_gone("an-id-of-another-form")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert owner_gone(theirs)


async def test_two_recoveries_at_once_take_each_job_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first, second = await Store.open(None, data_dir), await Store.open(None, data_dir)
    try:
        gone = Owner(lease_s=0.01)  # a process that died: its leases have run out
        ids = await _owned_jobs(first, gone, 12)
        ids += await _owned_jobs(first, Owner(lease_s=0.01), 1)  # and one nobody owns any more
        await asyncio.sleep(0.05)
        one, two = Owner(), Owner()
        dispatchers = [
            Dispatcher(first, StandInEngine(hold=set(ids)), stand_in_request, owner=one),
            Dispatcher(second, StandInEngine(hold=set(ids)), stand_in_request, owner=two),
        ]
        claims = await asyncio.gather(*(dispatcher.start() for dispatcher in dispatchers))
        assert sorted(claims[0] + claims[1]) == sorted(ids)
        assert not set(claims[0]) & set(claims[1])
        for job_id in ids:
            owner = (await first.get_job(job_id)).owner_id
            assert owner == (one.id if job_id in claims[0] else two.id)
        for dispatcher in dispatchers:
            await dispatcher.stop(grace_s=0)
    finally:
        await first.close()
        await second.close()


async def test_a_job_taken_by_another_process_ends_here_with_an_update_and_no_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    here, there = await Store.open(None, data_dir), await Store.open(None, data_dir)
    engine = StandInEngine()
    dispatcher = Dispatcher(here, engine, stand_in_request, owner=Owner(lease_s=30))
    await dispatcher.start()
    try:
        [job_id] = await _owned_jobs(here, dispatcher.owner, 1)
        engine.hold.add(job_id)
        await dispatcher.submit(await here.get_job(job_id))
        updates = dispatcher.subscribe(job_id)
        await engine.wait_active(job_id)
        # This process stalled past its lease; another one took the job over and finished it.
        await there.update_job(job_id, lease_until=None)
        other = Owner()
        assert await there.claim_job(job_id, other)
        await there.fail_job(job_id, "finished elsewhere", owner_id=other.id)
        caplog.clear()
        engine.release(job_id)
        seen = [update async for update in _within(updates, 5)]
        assert seen[-1].final and seen[-1].status == "failed" and seen[-1].error == "finished elsewhere"
        assert (await here.get_job(job_id)).error == "finished elsewhere"  # its outcome stands
        assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    finally:
        await dispatcher.stop(grace_s=1)
        await here.close()
        await there.close()


async def _within(stream, timeout: float):
    deadline = asyncio.get_running_loop().time() + timeout
    async for update in stream:
        yield update
        assert asyncio.get_running_loop().time() < deadline, "the job's updates never ended"


async def test_a_second_bot_on_one_database_refuses_unless_told_otherwise(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", engine="inprocess")
    first = await Services.open(settings, engine=StandInEngine(), role="bot")
    try:
        with pytest.raises(AnotherProcessRunningError, match="IMAGINE_ALLOW_SECOND_BOT") as error:
            await Services.open(settings, engine=StandInEngine(), role="bot")
        assert f"pid {os.getpid()}" in str(error.value)
        allowed = Settings(data_dir=settings.data_dir, engine="inprocess", allow_second_bot=True)
        second = await Services.open(allowed, engine=StandInEngine(), role="bot")
        await second.stop(grace_s=0)
        console = await Services.open(settings, engine=StandInEngine(), role="console")
        await console.stop(grace_s=0)  # a console beside the bot is fine
    finally:
        await first.stop(grace_s=0)
    again = await Services.open(settings, engine=StandInEngine(), role="bot")  # the first one stopped
    await again.stop(grace_s=0)


def test_the_bot_process_names_the_other_bot_and_exits_without_a_traceback(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    async def register() -> None:
        async with await Store.open(None, data_dir) as store:
            await store.register_process(Owner(lease_s=60), "bot")

    asyncio.run(register())
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGINE_")}
    env.update(IMAGINE_DATA_DIR=str(data_dir), DISCORD_TOKEN="x", IMAGINE_DEVICE="cpu")
    done = subprocess.run(
        [sys.executable, "-m", "bot"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert "another bot is already running on this database" in done.stderr
    assert "IMAGINE_ALLOW_SECOND_BOT=1" in done.stderr
    assert "Traceback" not in done.stderr
