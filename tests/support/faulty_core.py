"""`FaultyCore`: the real `EngineCore`, with faults a test can ask for by prompt.

Loaded by name inside engine processes and Ray Serve replicas (`core="tests.support.faulty_core:
FaultyCore"`), so a test can make a replica die or hang at a chosen point of a real job, which
no outside kill can time as precisely:

- prompt `die-once`: the first time a job id runs, its process exits at the first step (as a
  crash or a lost node would); a marker file in the temp folder makes the next run of the same job
  id run normally, wherever it runs on this machine;
- prompt `hang`: the job stops at its first step and never sends anything again.

Every `Finished` carries `timings["pid"]`, the process that made it, so a test can tell which
replica (and, through Ray's actor table, which node) ran a job.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from engine.api import EngineEvent, EngineRequest, Finished, Progress
from engine.core import BatchJob, EngineCore


def marker(job_id: str) -> Path:
    """The file that says `job_id` already died once."""
    return Path(tempfile.gettempdir()) / f"imagine-faulty-{job_id}"


def _fault(request: EngineRequest) -> str | None:
    prompt = getattr(request, "prompt", None)
    text = prompt.segments[0][0] if prompt is not None and prompt.segments else ""
    return text if text in ("die-once", "hang") else None


class FaultyCore(EngineCore):
    def _hooked(
        self, request: EngineRequest, emit: Callable[[EngineEvent], None]
    ) -> Callable[[EngineEvent], None]:
        fault = _fault(request)

        def hooked(event: EngineEvent) -> None:
            if isinstance(event, Progress) and fault == "hang":
                while True:
                    time.sleep(3600)
            if isinstance(event, Progress) and fault == "die-once":
                path = marker(request.job_id)
                if not path.exists():
                    path.write_text(str(os.getpid()))
                    os._exit(1)
            if isinstance(event, Finished):
                event = replace(event, timings={**event.timings, "pid": float(os.getpid())})
            emit(event)

        return hooked

    def run(
        self, request: EngineRequest, emit: Callable[[EngineEvent], None], should_stop: Callable[[], bool]
    ) -> None:
        super().run(request, self._hooked(request, emit), should_stop)

    def run_batch(self, jobs: Sequence[BatchJob]) -> None:
        super().run_batch([(request, self._hooked(request, emit), stop) for request, emit, stop in jobs])
