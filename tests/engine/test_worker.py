"""The worker process on its own, over a raw pipe: what it promises the supervisor."""

from __future__ import annotations

import multiprocessing

from engine import worker
from engine.api import EngineConfig
from engine.protocol import DEFAULT_CORE, Heartbeat


def test_the_worker_beats_while_loading_and_exits_when_its_parent_goes_away() -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    config = EngineConfig(model="tiny", device="cpu", heartbeat_s=0.05, hang_timeout_s=1.0)
    process = context.Process(
        target=worker.main, args=(child, config, DEFAULT_CORE), name="worker-under-test"
    )
    process.start()
    child.close()
    try:
        # Heartbeats come from their own thread, so they flow while the main thread imports torch
        # and loads the model: a slow load is not mistaken for a hang.
        beats = 0
        while beats < 3:
            assert parent.poll(60), "no message from the worker"
            if isinstance(parent.recv(), Heartbeat):
                beats += 1
        # The parent dies (its end of the pipe closes): the worker must not linger as an orphan
        # holding the GPU, whatever it was doing.
        parent.close()
        process.join(60)
        assert process.exitcode == 0
    finally:
        if process.exitcode is None:
            process.kill()
            process.join()
