"""The worker process on its own, over a raw pipe: what it promises the supervisor."""

from __future__ import annotations

import multiprocessing

import pytest

from engine import api, worker
from engine.protocol import DEFAULT_CORE, Heartbeat


def test_the_worker_beats_while_loading_and_exits_when_its_parent_goes_away() -> None:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    config = api.EngineConfig(model="tiny", device="cpu", heartbeat_s=0.05, hang_timeout_s=1.0)
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


# `run_job` guards every job against a core that misbehaves. The real core does not misbehave on
# purpose, so these few cores do it for the test: failure injection, no other way to get there.


class _RaisingCore:
    def run(self, request, emit, should_stop) -> None:
        emit(api.Started(job_id=request.job_id))
        raise RuntimeError("CUDA error: an illegal memory access was encountered")


class _SilentCore:
    def run(self, request, emit, should_stop) -> None:
        emit(api.Started(job_id=request.job_id))


class _ChattyCore:
    def run(self, request, emit, should_stop) -> None:
        emit(api.Failed(job_id=request.job_id, reason="width must be a multiple of 16"))
        emit(api.Progress(job_id=request.job_id, step=1, total=2))
        emit(api.Failed(job_id="someone-else", reason="not mine"))


REQUEST = api.ImagineRequest(job_id="j", prompt=api.PromptSpec.single("x"), seeds=(1,), width=64, height=64)


@pytest.mark.parametrize(
    ("core", "final"),
    [
        (_RaisingCore(), "The engine failed on this job: RuntimeError: CUDA error: an illegal memory access"),
        (_SilentCore(), worker.NO_RESULT),
        (_ChattyCore(), "width must be a multiple of 16"),
    ],
    ids=["core-raises", "core-returns-without-result", "core-emits-after-its-result"],
)
def test_every_job_ends_with_exactly_one_final_event_whatever_the_core_does(core: object, final: str) -> None:
    events: list[api.EngineEvent] = []

    worker.run_job(core, REQUEST, events.append, lambda: False)

    finals = [event for event in events if isinstance(event, api.Finished | api.Failed)]
    assert len(finals) == 1 and events[-1] is finals[0]
    assert finals[0].job_id == "j" and finals[0].reason.startswith(final)
    assert not finals[0].retryable


def test_a_job_cancelled_while_it_waited_never_reaches_the_core() -> None:
    events: list[api.EngineEvent] = []

    worker.run_job(_RaisingCore(), REQUEST, events.append, lambda: True)

    assert events == [api.Failed(job_id="j", reason="cancelled")]
