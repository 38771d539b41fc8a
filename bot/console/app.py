"""`imagine`: the whole job flow without Discord, and the operator's kit.

The console runs the same `Services` as the Discord bot (store, spawned engine, dispatcher, job
service), as the local OS user (user id 0, source `console`): console jobs skip guild settings
but not global bans. It works with no settings at all: the `tiny` model, `./data`, SQLite there,
migrations run on open.

Exit status: 0 success, 1 a job failed (or the engine could not start), 2 bad input (a bad
prompt, an unknown job id, an index out of range, a bad setting), 130 interrupted. Errors print
one line on stderr; with `--json` stdout still gets one JSON object with `error` set.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import TextIO

from sqlalchemy.engine import make_url

from bot.console.arguments import (
    EXIT_FAILED,
    EXIT_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConsoleError,
    build_parser,
)
from bot.console.commands import list_history, make_jobs, prompt_option, resume_jobs, show_job
from bot.console.output import Output, error_json, isatty
from bot.core.jobs import JobError
from bot.core.limits import LimitError
from bot.core.services import Services
from bot.logs import remove_logging, setup_logging
from bot.settings import Settings, SettingsError
from engine.api import EngineClient
from storage.errors import StorageError
from storage.models import Job
from storage.store import Store

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Entry points
# ---------------------------------------------------------------------------------------------


async def run_console(
    argv: Sequence[str] | None = None,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    environ: dict[str, str] | None = None,
    engine: EngineClient | None = None,
) -> int:
    """The console in a running event loop (tests call this; `main` wraps it).

    `engine` lets a caller reuse a started engine across commands; it is not closed here.
    """
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # argparse printed its own message (or --help)
        return int(exc.code or 0)
    out = Output(stdout, stderr, args.json)
    try:
        settings = Settings.from_env(environ)
    except SettingsError as exc:
        return _fail(out, str(exc), EXIT_INPUT)
    if args.verbose or settings.log_json:
        setup_logging(settings.log_level, settings.log_json, stderr)
    else:
        setup_logging("WARNING", False, stderr)

    try:
        if args.command in ("history", "show", "db", "option"):
            return await _with_store(args, settings, out)
        return await _with_services(args, settings, out, engine)
    except (ConsoleError, JobError, LimitError, ValueError, PermissionError) as exc:
        # PromptError and BlockedError are ValueErrors, BannedError a PermissionError.
        return _fail(out, str(getattr(exc, "user_message", None) or exc), EXIT_INPUT)
    except asyncio.CancelledError:
        out.error("interrupted: running jobs went back to the queue (`imagine resume` finishes them)")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        raise  # the reader of our output went away (`imagine ... | head`): nothing left to tell
    except StorageError as exc:  # a locked or damaged database: its sentence, no type name
        return _fail(out, str(exc), EXIT_FAILED)
    except Exception as exc:
        log.debug("console command failed", exc_info=True)
        return _fail(out, f"{type(exc).__name__}: {exc}", EXIT_FAILED)
    finally:
        remove_logging()  # the handler writes to this call's stderr, which may not outlive it


async def _with_store(args: argparse.Namespace, settings: Settings, out: Output) -> int:
    store = await Store.open(settings.database_url, settings.data_dir, wait_s=settings.database_wait_s)
    try:
        if args.command == "db":
            if out.as_json:
                out.json({"database": _safe_url(store), "status": "up to date"})
            else:
                out.line(f"database is at the newest schema: {_safe_url(store)}")
            return EXIT_OK
        if args.command == "history":
            return await list_history(args, store, out)
        if args.command == "option":
            return await prompt_option(args, store, out)
        return await show_job(args, store, out)
    finally:
        await store.close()


def _safe_url(store: Store) -> str:
    """The database URL without a password (it may end up in logs or CI output)."""
    return make_url(store.db.url).render_as_string(hide_password=True)


async def _with_services(
    args: argparse.Namespace, settings: Settings, out: Output, engine: EngineClient | None
) -> int:
    def ours(job: Job) -> bool:
        return job.source == "console"

    def nothing(job: Job) -> bool:
        return False

    store = await Store.open(settings.database_url, settings.data_dir, wait_s=settings.database_wait_s)
    try:
        leftovers = sum(1 for job in await store.pending_jobs() if ours(job))
        if args.command == "resume" and not leftovers:
            return await resume_jobs(None, [], out)  # nothing to do: no need to start the engine
        if args.command != "resume" and leftovers:
            # Only `resume` takes them up: a new `run` must not wait behind (or re-run) old work.
            out.stderr.write(
                f"note: {leftovers} earlier console job(s) were left unfinished; "
                "`imagine resume` finishes them\n"
            )
        if not out.as_json and isatty(out.stderr):
            out.stderr.write("starting the engine...\r")
            out.stderr.flush()
        recover = ours if args.command == "resume" else nothing
        services = await Services.start(settings, engine=engine, store=store, recover=recover, role="console")
        try:
            if args.command == "resume":
                return await resume_jobs(services, list(services.dispatcher.recovered), out)
            return await make_jobs(args, services, out)
        finally:
            # Ctrl-C or SIGTERM: do not wait for the running job; it goes back to queued.
            task = asyncio.current_task()
            interrupted = task is not None and task.cancelling() > 0
            await asyncio.shield(services.stop(grace_s=0.0 if interrupted else 30.0))
    finally:
        await asyncio.shield(store.close())


def _fail(out: Output, message: str, code: int) -> int:
    out.error(message)
    if out.as_json:
        out.json(error_json(message))
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """`imagine`: parse, run, exit with the status described in the module docstring."""

    async def runner() -> int:
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        if task is not None:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signal.SIGTERM, task.cancel)
        return await run_console(argv)

    try:
        return asyncio.run(runner())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # As a Unix tool does when its reader closes the pipe: stop quietly. Anything still
        # buffered for stdout goes nowhere, so the interpreter's exit cannot fail on it again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
