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
import getpass
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from bot.dispatcher import JobUpdate, LimitError
from bot.jobs import Action, JobError, Requester
from bot.logs import remove_logging, setup_logging
from bot.prompt import PromptError, parse_prompt, unknown_words
from bot.settings import Settings, SettingsError
from engine.api import EngineClient
from storage.errors import StorageError
from storage.models import Job, JobStatus

log = logging.getLogger(__name__)

CONSOLE_USER_ID = 0
EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
JOB_FIELDS = ("job_id", "parent_id", "kind", "status", "width", "height", "seeds", "images", "grid", "error")


class ConsoleError(Exception):
    """Bad input at the console: one line, exit status 2."""


# ---------------------------------------------------------------------------------------------
# Arguments
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log at IMAGINE_LOG_LEVEL (default: warnings only)"
    )

    parser = argparse.ArgumentParser(
        prog="imagine",
        description="Make images from the terminal: the same engine, queue and history as the Discord bot.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", parents=[common], help="a 2x2 grid from a prompt (Midjourney parameters work)")
    p.add_argument("prompt", help='e.g. "a lighthouse at dusk --ar 16:9 --seed 42"')

    p = sub.add_parser("upscale", parents=[common], help="make an image 2x (Subtle unless --creative)")
    p.add_argument("job")
    p.add_argument("index", nargs="?", help="1-4: the cell of a grid job; leave out for a single image")
    p.add_argument("--creative", action="store_true", help="Upscale (Creative) instead of Subtle")

    p = sub.add_parser("vary", parents=[common], help="four variations of an image (Strong unless --subtle)")
    p.add_argument("job")
    p.add_argument("index", nargs="?", help="1-4: the cell of a grid job; leave out for a single image")
    strength = p.add_mutually_exclusive_group()
    strength.add_argument("--strong", action="store_true", help="Vary (Strong), the default")
    strength.add_argument("--subtle", action="store_true", help="Vary (Subtle)")

    p = sub.add_parser("zoom", parents=[common], help="zoom out by FACTOR (1.0-2.0): four images")
    p.add_argument("job")
    p.add_argument("args", nargs="+", metavar="[INDEX] FACTOR")
    p.add_argument("--prompt", help="custom zoom: an edited prompt (its --ar may change the aspect ratio)")

    p = sub.add_parser("pan", parents=[common], help="extend the image left, right, up or down: four images")
    p.add_argument("job")
    p.add_argument("args", nargs="+", metavar="[INDEX] left|right|up|down")

    p = sub.add_parser("square", parents=[common], help="make the image square by outpainting: four images")
    p.add_argument("job")
    p.add_argument("index", nargs="?", help="1-4: the cell of a grid job; leave out for a single image")

    p = sub.add_parser("reroll", parents=[common], help="the same job again with a new seed")
    p.add_argument("job")

    p = sub.add_parser("history", parents=[common], help="recent jobs, newest first")
    p.add_argument("--user", help="only this user id (0 is the console)")
    p.add_argument("--limit", default="20", help="how many jobs (1-500, default 20)")

    p = sub.add_parser("show", parents=[common], help="one job, its files and its lineage")
    p.add_argument("job")

    sub.add_parser(
        "resume", parents=[common], help="finish the console jobs an earlier run left queued or running"
    )

    p = sub.add_parser("db", parents=[common], help="database maintenance")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", parents=[common], help="run the migrations up to the newest schema")
    return parser


def _index(text: str | None) -> int | None:
    """A console INDEX (1-based, like U1-U4) as the job service's 0-based cell index."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ConsoleError(f"INDEX must be a whole number from 1 to 4, got {text!r}") from None
    if value < 1:
        raise ConsoleError(f"INDEX must be from 1 to 4, got {value}")
    return value - 1


def _split_index(args: list[str], what: str) -> tuple[int | None, str]:
    if len(args) == 1:
        return None, args[0]
    if len(args) == 2:
        return _index(args[0]), args[1]
    raise ConsoleError(f"expected [INDEX] {what}, got {' '.join(args)!r}")


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class Output:
    """Where results, errors and the progress bar go (stdout, stderr; the bar only on a TTY)."""

    def __init__(self, stdout: TextIO, stderr: TextIO, as_json: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.as_json = as_json
        self.show_progress = not as_json and _isatty(stderr)
        self._bar_drawn = False

    def json(self, obj: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def error(self, message: str) -> None:
        self.clear_bar()
        self.stderr.write(f"imagine: error: {message}\n")
        self.stderr.flush()

    def progress(self, job_id: str, update: JobUpdate) -> None:
        if not self.show_progress:
            return
        short = job_id[:8]
        if update.status == JobStatus.QUEUED and update.position:
            text = f"job {short}: queued, position {update.position}"
        elif update.status == JobStatus.RUNNING and update.total:
            width = 30
            filled = int(width * update.step / update.total)
            text = f"job {short}: [{'#' * filled}{'.' * (width - filled)}] {update.step}/{update.total}"
        elif update.status == JobStatus.RUNNING:
            text = f"job {short}: starting"
        else:
            self.clear_bar()
            return
        self.stderr.write("\r" + text.ljust(60))
        self.stderr.flush()
        self._bar_drawn = True

    def clear_bar(self) -> None:
        if self._bar_drawn:
            self.stderr.write("\r" + " " * 60 + "\r")
            self.stderr.flush()
            self._bar_drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def job_json(store: Any, job: Job) -> dict[str, Any]:
    """The DESIGN.md job object. Paths are absolute, so they work from any directory."""
    cells = job.cells
    grid = job.grid
    return {
        "job_id": job.id,
        "parent_id": job.parent_id,
        "kind": job.kind,
        "status": job.status,
        "width": job.width,
        "height": job.height,
        "seeds": [image.seed for image in cells] if cells else list((job.params or {}).get("seeds") or []),
        "images": [str(store.files.absolute(image.path)) for image in cells],
        "grid": str(store.files.absolute(grid.path)) if grid is not None else None,
        "error": job.error if job.status != JobStatus.DONE else None,
    }


def _error_json(message: str) -> dict[str, Any]:
    obj: dict[str, Any] = dict.fromkeys(JOB_FIELDS)
    obj["error"] = message
    return obj


def _describe(store: Any, job: Job, out: Output) -> None:
    """The text form of a finished job: id and status, then the grid (or the image) path."""
    data = job_json(store, job)
    size = f"{job.width}x{job.height}" if job.width else "?"
    seed = f", seed {job.seed}" if job.seed is not None else ""
    out.line(f"job {job.id}: {job.status} ({job.kind}, {size}{seed})")
    if data["grid"]:
        out.line(f"  grid:  {data['grid']}")
        for i, path in enumerate(data["images"], start=1):
            out.line(f"  {i}:     {path}")
    elif data["images"]:
        out.line(f"  image: {data['images'][0]}")
    if data["error"]:
        out.line(f"  error: {data['error']}")


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


async def _wait(services: Any, job_ids: list[str], out: Output) -> list[Job]:
    """Follow the jobs to their final status (progress on stderr), return the finished rows."""
    streams = [(job_id, services.dispatcher.subscribe(job_id)) for job_id in job_ids]  # register all first
    finished: list[Job] = []
    for job_id, stream in streams:
        async for update in stream:
            out.progress(job_id, update)
        out.clear_bar()
        row = await services.store.get_job(job_id)
        finished.append(row)
    return finished


def _report(services: Any, jobs: list[Job], out: Output) -> int:
    for job in jobs:
        if out.as_json:
            out.json(job_json(services.store, job))
        else:
            _describe(services.store, job, out)
    failed = [job for job in jobs if job.status != JobStatus.DONE]
    for job in failed:
        out.error(f"job {job.id} {job.status}: {job.error or 'no reason recorded'}")
    return EXIT_FAILED if failed else EXIT_OK


async def _make(args: argparse.Namespace, services: Any, out: Output) -> int:
    requester = Requester(CONSOLE_USER_ID, _user_name(), source="console")
    jobs_service = services.jobs
    command = args.command
    if command == "run":
        jobs = await jobs_service.imagine(requester, args.prompt)
        _note_unknown_words(jobs, jobs_service.info.vocabulary, out)
    else:
        kwargs: dict[str, Any] = {}
        if command == "upscale":
            action = Action.UPSCALE_CREATIVE if args.creative else Action.UPSCALE_SUBTLE
            kwargs["index"] = _index(args.index)
        elif command == "vary":
            action = Action.VARY_SUBTLE if args.subtle else Action.VARY_STRONG
            kwargs["index"] = _index(args.index)
        elif command == "zoom":
            index, factor = _split_index(args.args, "FACTOR")
            try:
                kwargs["zoom"] = float(factor)
            except ValueError:
                raise ConsoleError(f"FACTOR must be a number from 1.0 to 2.0, got {factor!r}") from None
            action, kwargs["index"], kwargs["prompt_override"] = Action.ZOOM, index, args.prompt
        elif command == "pan":
            index, direction = _split_index(args.args, "left|right|up|down")
            action, kwargs["index"], kwargs["direction"] = Action.PAN, index, direction.lower()
        elif command == "square":
            action, kwargs["index"] = Action.SQUARE, _index(args.index)
        elif command == "reroll":
            action = Action.REROLL
        else:  # pragma: no cover - argparse knows the commands
            raise ConsoleError(f"unknown command {command}")
        jobs = [await jobs_service.derive(requester, args.job, action, **kwargs)]
    finished = await _wait(services, [job.id for job in jobs], out)
    return _report(services, finished, out)


def _note_unknown_words(jobs: list[Job], vocabulary: Sequence[str], out: Output) -> None:
    """Say once which words the model never learned (the toy model's small world): the prompt
    still runs, drawn without them."""
    unknown: dict[str, None] = {}
    for job in jobs:
        try:
            unknown.update(dict.fromkeys(unknown_words(parse_prompt(job.prompt), vocabulary)))
        except PromptError:  # the stored prompt was accepted once; never fail a run over a note
            continue
    if unknown:
        out.stderr.write(
            f"note: the model does not know {', '.join(unknown)} and draws without "
            f"{'it' if len(unknown) == 1 else 'them'} (docs/toy-model.md lists the words it knows)\n"
        )


async def _resume(services: Any, recovered: list[str], out: Output) -> int:
    left_alone = list(services.dispatcher.left_alone) if services is not None else []
    if left_alone:
        # Another `imagine` still runs them: taking them would run them twice.
        out.stderr.write(
            f"note: left {len(left_alone)} job(s) alone: another running process holds them "
            f"({', '.join(left_alone)})\n"
        )
    if not recovered:
        if out.as_json:
            out.json({"jobs": [], "left_alone": left_alone})
        elif left_alone:
            out.line("nothing to resume: every unfinished console job belongs to a process still running")
        else:
            out.line("nothing to resume: no console job was left queued or running")
        return EXIT_OK
    finished = await _wait(services, recovered, out)
    if out.as_json:
        out.json({"jobs": [job_json(services.store, job) for job in finished]})
        return EXIT_FAILED if any(job.status != JobStatus.DONE for job in finished) else EXIT_OK
    return _report(services, finished, out)


async def _history(args: argparse.Namespace, store: Any, out: Output) -> int:
    from storage.queries import HistoryQuery

    user_id = None
    if args.user is not None:
        try:
            user_id = int(args.user)
        except ValueError:
            raise ConsoleError(
                f"--user takes a user id (a number; 0 is the console), got {args.user!r}"
            ) from None
    try:
        limit = int(args.limit)
    except ValueError:
        raise ConsoleError(f"--limit must be a whole number from 1 to 500, got {args.limit!r}") from None
    if not 1 <= limit <= 500:
        raise ConsoleError(f"--limit must be from 1 to 500, got {limit}")
    page = await store.history(HistoryQuery(user_id=user_id, limit=limit))
    if out.as_json:
        out.json({"jobs": [_job_summary(store, job) for job in page.jobs]})
        return EXIT_OK
    if not page.jobs:
        out.line("no jobs yet")
    for job in page.jobs:
        when = job.created_at.strftime("%Y-%m-%d %H:%M") if job.created_at else "?"
        prompt = job.prompt if len(job.prompt) <= 60 else job.prompt[:57] + "..."
        out.line(f"{job.id}  {when}  {job.status:<9} {job.kind:<16} {job.user_name or job.user_id}  {prompt}")
    return EXIT_OK


def _job_summary(store: Any, job: Job) -> dict[str, Any]:
    data = job_json(store, job)
    data.update(
        prompt=job.prompt,
        user_id=job.user_id,
        user_name=job.user_name,
        source=job.source,
        created_at=job.created_at.isoformat() if job.created_at else None,
    )
    return data


async def _show(args: argparse.Namespace, store: Any, out: Output) -> int:
    job = await store.get_job(args.job)
    if job is None:
        raise ConsoleError(f"there is no job {args.job!r}")
    lineage = await store.lineage(job.id)
    if out.as_json:
        data = _job_summary(store, job)
        data["ancestors"] = [_job_summary(store, j) for j in lineage.ancestors]
        data["descendants"] = [_job_summary(store, j) for j in lineage.descendants]
        out.json(data)
        return EXIT_OK
    _describe(store, job, out)
    out.line(f"  prompt: {job.prompt}")
    out.line(
        f"  by:     {job.user_name or job.user_id} ({job.source}), {job.created_at:%Y-%m-%d %H:%M:%S} UTC"
    )
    if job.hidden:
        out.line(f"  hidden: {job.hidden_reason or 'by a moderator'}")
    out.line("lineage:")
    depth = 0
    for ancestor in lineage.ancestors:
        out.line(f"  {'  ' * depth}{_lineage_line(ancestor)}")
        depth += 1
    out.line(f"  {'  ' * depth}{_lineage_line(job)}  <- this job")
    for child in lineage.descendants:
        out.line(f"  {'  ' * (depth + 1)}{_lineage_line(child)}")
    return EXIT_OK


def _lineage_line(job: Job) -> str:
    cell = f" of image {job.parent_index + 1}" if job.parent_index is not None else ""
    return f"{job.id} {job.kind}{cell} [{job.status}]"


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "console"


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
        if args.command in ("history", "show", "db"):
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
    from storage.store import Store

    store = await Store.open(settings.database_url, settings.data_dir, wait_s=settings.database_wait_s)
    try:
        if args.command == "db":
            if out.as_json:
                out.json({"database": _safe_url(store), "status": "up to date"})
            else:
                out.line(f"database is at the newest schema: {_safe_url(store)}")
            return EXIT_OK
        if args.command == "history":
            return await _history(args, store, out)
        return await _show(args, store, out)
    finally:
        await store.close()


def _safe_url(store: Any) -> str:
    """The database URL without a password (it may end up in logs or CI output)."""
    from sqlalchemy.engine import make_url

    return make_url(store.db.url).render_as_string(hide_password=True)


async def _with_services(
    args: argparse.Namespace, settings: Settings, out: Output, engine: EngineClient | None
) -> int:
    from bot.services import Services
    from storage.store import Store

    def ours(job: Job) -> bool:
        return job.source == "console"

    def nothing(job: Job) -> bool:
        return False

    store = await Store.open(settings.database_url, settings.data_dir, wait_s=settings.database_wait_s)
    try:
        leftovers = sum(1 for job in await store.pending_jobs() if ours(job))
        if args.command == "resume" and not leftovers:
            return await _resume(None, [], out)  # nothing to do: no need to start the engine
        if args.command != "resume" and leftovers:
            # Only `resume` takes them up: a new `run` must not wait behind (or re-run) old work.
            out.stderr.write(
                f"note: {leftovers} earlier console job(s) were left unfinished; "
                "`imagine resume` finishes them\n"
            )
        if not out.as_json and _isatty(out.stderr):
            out.stderr.write("starting the engine...\r")
            out.stderr.flush()
        recover = ours if args.command == "resume" else nothing
        services = await Services.start(settings, engine=engine, store=store, recover=recover, role="console")
        try:
            if args.command == "resume":
                return await _resume(services, list(services.dispatcher.recovered), out)
            return await _make(args, services, out)
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
        out.json(_error_json(message))
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


if __name__ == "__main__":
    sys.exit(main())
