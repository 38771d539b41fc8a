"""LocalEngine before and after its worker's life: refused settings, a model that cannot load,
a closed engine, and the promise that the bot's side never imports torch."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys

import pytest

from engine.api import EngineConfig, EngineError, ImagineRequest, PromptSpec
from engine.local import LocalEngine


def test_importing_the_client_side_does_not_import_torch() -> None:
    # A fresh interpreter: this test process may have imported torch for other tests.
    code = (
        "import sys, engine.local, engine.protocol\n"
        "heavy = sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slots": 0}, "slots must be at least 1"),
        ({"config": EngineConfig(heartbeat_s=5.0, hang_timeout_s=5.0)}, "hang_timeout_s > heartbeat_s"),
        ({"config": EngineConfig(heartbeat_s=0.0)}, "heartbeat_s > 0"),
    ],
)
def test_settings_that_cannot_work_are_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalEngine(**kwargs)


async def test_a_closed_engine_refuses_work_without_starting_a_worker() -> None:
    engine = LocalEngine(EngineConfig(model="tiny", device="cpu"))
    await engine.close()

    with pytest.raises(EngineError, match="closed"):
        await engine.start()
    request = ImagineRequest(job_id="late", prompt=PromptSpec.single("x"), seeds=(1,), width=64, height=64)
    with pytest.raises(EngineError, match="closed"):
        await anext(engine.submit(request))
    assert engine.worker_pid is None


async def test_an_unknown_model_fails_start_with_the_workers_reason(caplog: pytest.LogCaptureFixture) -> None:
    engine = LocalEngine(EngineConfig(model="no-such-model-anywhere", device="cpu", warmup=False))
    caplog.set_level(logging.INFO)
    try:
        with pytest.raises(EngineError) as raised:
            await engine.start()
    finally:
        await engine.close()

    message = str(raised.value)
    assert "could not load model 'no-such-model-anywhere'" in message
    assert len(message) > len("The engine could not load model 'no-such-model-anywhere': ")  # the child's why
    # The worker's own log lines reach this process's logging, under the worker's logger names.
    assert any(
        record.name == "engine.worker" and "failed" in record.getMessage() for record in caplog.records
    )


async def test_closing_while_the_model_loads_stops_the_worker_at_once() -> None:
    engine = LocalEngine(EngineConfig(model="tiny", device="cpu"))
    starting = asyncio.create_task(engine.start())
    while engine.worker_pid is None:  # the process is up and loading
        await asyncio.sleep(0.01)
    pid = engine.worker_pid

    await engine.close()

    with pytest.raises(EngineError, match="closed while loading"):
        await starting
    assert engine.worker_pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone and reaped: no orphan left loading a model


async def test_worker_log_lines_carry_their_job_id_and_library_chatter_stays_off_the_console(
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # A fresh worker as in production (warm-up included): transformers' torchvision advice and
    # diffusers' dtype notes would fire in it now, on the stderr it shares with this process.
    caplog.set_level(logging.INFO)
    engine = LocalEngine(EngineConfig(model="tiny", device="cpu"))
    try:
        await engine.start()
        pid = engine.worker_pid
        request = ImagineRequest(
            job_id="too-small", prompt=PromptSpec.single("x"), seeds=(1,), width=8, height=8
        )
        events = [event async for event in engine.submit(request)]
    finally:
        await engine.close()

    assert "too small" in events[-1].reason
    refused = [r for r in caplog.records if r.name == "engine.core" and "refused" in r.getMessage()]
    assert [r.job_id for r in refused] == ["too-small"]  # relayed from the worker with the job's id
    ready = [r for r in caplog.records if r.name == "engine.worker" and "loaded" in r.getMessage()]
    assert ready and not hasattr(ready[0], "job_id")  # a line outside any job claims none
    err = capfd.readouterr().err
    assert "torchvision" not in err and "float32" not in err and "Traceback" not in err, err
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the idle worker exited on the shutdown message and was reaped
