"""One engine worker process as the parent sees it: its pipe, its reader thread (the supervisor)
and its sender thread, and the exit hook that kills workers nobody closed. `LocalEngine`
(engine/local.py) starts and replaces these; see its docstring for the threads' roles.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.util  # imported before our atexit hook, so ours runs first (LIFO)
import queue
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.api import EngineConfig, ModelInfo
from engine.protocol import Heartbeat, ParentMessage, Ready, Shutdown, WorkerLog

log = logging.getLogger("engine.local")  # one logger name for the engine client's lines

# Until the model is loaded a worker gets at least this long between two messages: the first
# heartbeat waits for the interpreter to start, and `import torch` holds the interpreter lock
# while it loads its native libraries, which can take a while on a busy machine.
LOADING_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


OnMessage = Callable[["WorkerProcess", object, float], None]
OnLost = Callable[["WorkerProcess", bool], None]


@dataclass(eq=False)
class WorkerProcess:
    """One child process with its pipe, its reader (the supervisor) and its sender thread."""

    process: multiprocessing.process.BaseProcess
    conn: multiprocessing.connection.Connection
    ready: asyncio.Future[ModelInfo]
    config: EngineConfig
    _outbox: queue.SimpleQueue[ParentMessage | None] = field(default_factory=queue.SimpleQueue)
    _stopping: bool = False
    # multiprocessing's join is not thread-safe: two threads reaping at once can make one of them
    # see "still running" for a process that has exited. Reader, close and atexit share this lock.
    _reap_lock: threading.Lock = field(default_factory=threading.Lock)

    def join(self, timeout: float) -> int | None:
        """Wait for the process to exit; its exit code, or None if it is still running."""
        with self._reap_lock:
            self.process.join(timeout)
            return self.process.exitcode

    def begin(self, loop: asyncio.AbstractEventLoop, on_message: OnMessage, on_lost: OnLost) -> None:
        threading.Thread(
            target=self._read, args=(loop, on_message, on_lost), name="engine-reader", daemon=True
        ).start()
        threading.Thread(target=self._write, name="engine-sender", daemon=True).start()

    def post(self, message: ParentMessage) -> None:
        """Queue a message for the child; sent in order by the sender thread."""
        self._outbox.put(message)

    def _write(self) -> None:
        while (message := self._outbox.get()) is not None:
            try:
                self.conn.send(message)
            except (OSError, ValueError):
                return  # the child is gone; the reader reports it

    def _read(self, loop: asyncio.AbstractEventLoop, on_message: OnMessage, on_lost: OnLost) -> None:
        timeout = max(LOADING_TIMEOUT_S, self.config.hang_timeout_s)
        hung = False
        while True:
            try:
                ready = multiprocessing.connection.wait([self.conn, self.process.sentinel], timeout)
            except OSError:  # `stop` closed our end of the pipe: this worker is being let go
                break
            if not ready:
                if self._stopping:
                    continue
                hung = True
                log.error(
                    "engine worker (pid %s) sent nothing for %.1f s; killing it", self.process.pid, timeout
                )
                self.process.kill()
                break
            if self.conn not in ready:
                break  # the process exited and everything it sent has been read
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            received_at = time.time()
            if isinstance(message, Ready):
                timeout = self.config.hang_timeout_s
            if isinstance(message, Heartbeat):
                continue
            if isinstance(message, WorkerLog):
                _relay(message)
                continue
            if not _call_soon(loop, on_message, self, message, received_at):
                return
        if not self._stopping:
            self.join(STOP_TIMEOUT_S)
            self._release()
            _call_soon(loop, on_lost, self, hung)

    def _release(self) -> None:
        """A lost worker's sender thread and pipe end go with it (one of each per crash otherwise)."""
        self._outbox.put(None)
        with contextlib.suppress(OSError):
            self.conn.close()
        live_workers.discard(self)

    def stop(self, timeout: float) -> None:
        """Shut the child down: ask, wait, then terminate, then kill. Blocking; run in a thread."""
        self._stopping = True
        self._outbox.put(Shutdown())
        self._outbox.put(None)
        if self.join(timeout) is None:
            log.warning("engine worker (pid %s) ignored shutdown; terminating it", self.process.pid)
            self.process.terminate()
            if self.join(2.0) is None:
                self.process.kill()
                self.join(2.0)
        self._release()


def _relay(message: WorkerLog) -> None:
    """Re-emit a worker's log record here; its job id goes on the record as `job_id`, so any
    filter or formatter can show it (the reader thread has no job context of its own)."""
    extra = {"job_id": message.job_id} if message.job_id is not None else None
    logging.getLogger(message.name).log(message.level, "%s", message.message, extra=extra)


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: object) -> bool:
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # the loop is closed: nobody is listening any more
        return False
    return True


live_workers: weakref.WeakSet[WorkerProcess] = weakref.WeakSet()


@atexit.register
def _kill_forgotten_workers() -> None:
    """A `LocalEngine` that was never closed must not keep the interpreter from exiting.

    multiprocessing joins non-daemon children at exit; a worker still waiting for jobs would make
    that join wait forever, so kill what is left first (atexit runs this before multiprocessing's).
    """
    for worker in list(live_workers):
        worker._stopping = True
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.join(2.0)
