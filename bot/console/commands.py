"""What each `imagine` subcommand does, over the shared `Services` (make, resume, history, show)."""

from __future__ import annotations

import argparse
import getpass
import logging
from collections.abc import Sequence
from typing import Any

from bot.console import tools
from bot.console.arguments import (
    CONSOLE_USER_ID,
    EXIT_FAILED,
    EXIT_OK,
    ConsoleError,
    parse_index,
    split_index,
)
from bot.console.output import Output, describe, job_json
from bot.core.fetch import fetch_image
from bot.core.jobs import Action, Requester
from bot.core.options import check_option
from bot.core.png_info import saved_parameters
from bot.core.references import fetch_references
from bot.core.region import MAX_MASK_BYTES
from bot.core.remix import REMIX_KEY
from bot.core.services import Services
from bot.prompt import PromptError, parse_prompt, unknown_words
from storage.models import ANSWER_KINDS, Job, JobStatus
from storage.queries import HistoryQuery
from storage.store import Store

log = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------


async def _wait(services: Services, job_ids: list[str], out: Output) -> list[Job]:
    """Follow the jobs to their final status (progress on stderr), return the finished rows."""
    streams = [(job_id, services.dispatcher.subscribe(job_id)) for job_id in job_ids]  # register all first
    finished: list[Job] = []
    for job_id, stream in streams:
        async for update in stream:
            out.progress(job_id, update)
        out.clear_bar()
        row = await services.store.get_job(job_id)
        finished.append(row)  # type: ignore[arg-type]  # a job it just followed exists
    return finished


def _report(services: Services, jobs: list[Job], out: Output) -> int:
    for job in jobs:
        if out.as_json:
            out.json(job_json(services.store, job))
        else:
            describe(services.store, job, out)
    failed = [job for job in jobs if job.status != JobStatus.DONE]
    for job in failed:
        out.error(f"job {job.id} {job.status}: {job.error or 'no reason recorded'}")
    return EXIT_FAILED if failed else EXIT_OK


async def make_jobs(args: argparse.Namespace, services: Services, out: Output) -> int:
    requester = Requester(CONSOLE_USER_ID, _user_name(), source="console")
    jobs_service = services.jobs
    command = args.command
    if command == "run":
        # --sref/--oref links are fetched like Discord's (SSRF-safe); image prompts are not.
        urls = await jobs_service.reference_urls(requester, args.prompt)
        references = await fetch_references(urls, fetch_image)
        jobs = await jobs_service.imagine(requester, args.prompt, references=references)
        _note_unknown_words(jobs, jobs_service.info.vocabulary, out)
    elif command in ("shorten", "describe"):
        return await tools.answer(args, services, requester, out)
    elif command == "blend":
        jobs = [await tools.blend(args, services, requester)]
    elif command == "pick":
        jobs = await tools.pick(args, services, requester)
    elif command == "region":
        jobs = [await jobs_service.region(requester, args.job, _read_mask(args.mask), args.prompt)]
    else:
        kwargs: dict[str, Any] = {}
        if command == "upscale":
            action = Action.UPSCALE_CREATIVE if args.creative else Action.UPSCALE_SUBTLE
            kwargs["index"] = parse_index(args.index)
        elif command == "vary":
            action = Action.VARY_SUBTLE if args.subtle else Action.VARY_STRONG
            kwargs["index"], kwargs["prompt_override"] = parse_index(args.index), args.prompt
        elif command == "zoom":
            index, factor = split_index(args.args, "FACTOR")
            try:
                kwargs["zoom"] = float(factor)
            except ValueError:
                raise ConsoleError(f"FACTOR must be a number from 1.0 to 2.0, got {factor!r}") from None
            action, kwargs["index"], kwargs["prompt_override"] = Action.ZOOM, index, args.prompt
        elif command == "pan":
            index, direction = split_index(args.args, "left|right|up|down")
            action, kwargs["index"], kwargs["direction"] = Action.PAN, index, direction.lower()
            kwargs["prompt_override"] = args.prompt
        elif command == "square":
            action, kwargs["index"] = Action.SQUARE, parse_index(args.index)
        elif command == "reroll":
            action, kwargs["prompt_override"] = Action.REROLL, args.prompt
        else:  # pragma: no cover - argparse knows the commands
            raise ConsoleError(f"unknown command {command}")
        jobs = [await jobs_service.derive(requester, args.job, action, **kwargs)]
    finished = await _wait(services, [job.id for job in jobs], out)
    return _report(services, finished, out)


def _read_mask(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(MAX_MASK_BYTES + 1)
    except OSError as exc:
        raise ConsoleError(f"cannot read the mask {path}: {exc.strerror or exc}") from None


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


async def resume_jobs(services: Services | None, recovered: list[str], out: Output) -> int:
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
    assert services is not None, "jobs were recovered, so the services run"
    finished = await _wait(services, recovered, out)
    if out.as_json:
        out.json({"jobs": [job_json(services.store, job) for job in finished]})
        return EXIT_FAILED if any(job.status != JobStatus.DONE for job in finished) else EXIT_OK
    return _report(services, finished, out)


async def list_history(args: argparse.Namespace, store: Store, out: Output) -> int:
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


def _job_summary(store: Store, job: Job) -> dict[str, Any]:
    data = job_json(store, job)
    data.update(
        prompt=job.prompt,
        remixed_from=(job.params or {}).get(REMIX_KEY),
        user_id=job.user_id,
        user_name=job.user_name,
        source=job.source,
        created_at=job.created_at.isoformat() if job.created_at else None,
    )
    return data


async def show_job(args: argparse.Namespace, store: Store, out: Output) -> int:
    job = await store.get_job(args.job)
    if job is None:
        raise ConsoleError(f"there is no job {args.job!r}")
    lineage = await store.lineage(job.id)
    if out.as_json:
        data = _job_summary(store, job)
        data["ancestors"] = [_job_summary(store, j) for j in lineage.ancestors]
        data["descendants"] = [_job_summary(store, j) for j in lineage.descendants]
        data["parameters"] = saved_parameters(store, job)
        out.json(data)
        return EXIT_OK
    if job.kind in ANSWER_KINDS:
        tools.show_answer(store, job, out)
    else:
        describe(store, job, out)
    out.line(f"  prompt: {job.prompt}")
    remixed_from = (job.params or {}).get(REMIX_KEY)
    if remixed_from is not None:
        out.line(f"  remixed from: {remixed_from}")
    parameters = saved_parameters(store, job)
    if parameters is not None:
        out.line("  parameters (as saved in the PNG):")
        for line in parameters.splitlines():
            out.line(f"    {line}")
        if len(job.cells) > 1:
            out.line(
                f"  seeds: {', '.join(str(image.seed) for image in job.cells)} (images 1-{len(job.cells)})"
            )
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


async def prompt_option(args: argparse.Namespace, store: Store, out: Output) -> int:
    """`imagine option set NAME [VALUE]` / `imagine option list`: the console user's options."""
    if args.action == "list":
        options = await store.prompt_options(CONSOLE_USER_ID)
        if out.as_json:
            out.json({"options": options})
        elif not options:
            out.line("no options yet (imagine option set NAME VALUE)")
        for name, value in options.items() if not out.as_json else ():
            out.line(f"--{name} = {value}")
        return EXIT_OK
    if not args.name:
        raise ConsoleError("option set needs a NAME (and VALUE, the parameters it stands for)")
    if args.value is None or not args.value.strip():
        name = args.name.strip().lstrip("-").lower()
        removed = await store.set_prompt_option(CONSOLE_USER_ID, name, None)
        if out.as_json:
            out.json({"name": name, "removed": removed})
        else:
            out.line(f"removed --{name}" if removed else f"there is no option --{name}")
        return EXIT_OK
    name, value = check_option(args.name, args.value)
    await store.set_prompt_option(CONSOLE_USER_ID, name, value)
    if out.as_json:
        out.json({"name": name, "value": value})
    else:
        out.line(f"--{name} now stands for {value}")
    return EXIT_OK


def _lineage_line(job: Job) -> str:
    cell = f" of image {job.parent_index + 1}" if job.parent_index is not None else ""
    return f"{job.id} {job.kind}{cell} [{job.status}]"


def _user_name() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user database entry (containers)
        return "console"
