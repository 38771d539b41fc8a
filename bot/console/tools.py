"""`imagine blend`, `shorten`, `describe` and `pick`: the console's face of the prompt tools.

Images come from local files (the console's user already has them; no URL is fetched) and pass
the same decoding limits as a Discord attachment. `shorten` and `describe` print their answer
and the job id; `pick JOB N` imagines prompt N of that answer as a job derived from it.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from bot.console.arguments import EXIT_OK, ConsoleError
from bot.console.output import Output, job_json
from bot.core.decode import MAX_BYTES, ImageFetchError, decode_attachment
from bot.core.prompt_tools import options, ranking
from bot.core.rules import Requester
from bot.core.services import Services
from engine.api import ImageData
from storage.models import Job
from storage.store import Store


async def read_image(path_text: str, what: str = "IMAGE") -> ImageData:
    """An image file, within the limits of a Discord attachment; `ConsoleError` says why not."""
    path = Path(path_text)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConsoleError(
                f"{what} {path_text} is {size / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB"
            )
        data = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        raise ConsoleError(f"cannot read {what} {path_text}: {exc.strerror or exc}") from None
    try:
        return await decode_attachment(data, None)
    except ImageFetchError as exc:
        raise ConsoleError(f"{what} {path_text}: {exc}") from None


async def blend(args: argparse.Namespace, services: Services, requester: Requester) -> Job:
    images = [await read_image(path, f"image {n}") for n, path in enumerate(args.images, start=1)]
    return await services.blends.blend(requester, images, args.dimensions, args.prompt)


async def answer(args: argparse.Namespace, services: Services, requester: Requester, out: Output) -> int:
    """`shorten` or `describe`: ask, then print the answer."""
    tools = services.prompt_tools
    if args.command == "shorten":
        job = await tools.shorten(requester, args.prompt)
    else:
        job = await tools.describe(requester, await read_image(args.image))
    show_answer(services.store, job, out)
    return EXIT_OK


def answer_json(store: Store, job: Job) -> dict[str, Any]:
    """The job object of an answer, with its prompts and (for shorten) the words' scores."""
    data = job_json(store, job)
    data["prompts"] = options(job)
    data["ranking"] = [[pair.word, pair.score] for pair in ranking(job)]
    return data


def show_answer(store: Store, job: Job, out: Output) -> None:
    if out.as_json:
        out.json(answer_json(store, job))
        return
    out.line(f"job {job.id}: {job.status} ({job.kind})")
    words = ranking(job)
    if words:
        out.line("words by how far dropping each moves the text encoder's embedding:")
        for pair in words:
            out.line(f"  {pair.score:7.4f}  {pair.word}")
    offered = options(job)
    out.line("prompts:" if offered else "no shorter prompt: it is one word already")
    for number, text in enumerate(offered, start=1):
        out.line(f"  {number}. {text}")
    if offered:
        out.line(f"run one with: imagine pick {job.id} N")


async def pick(args: argparse.Namespace, services: Services, requester: Requester) -> list[Job]:
    try:
        number = int(args.number)
    except ValueError:
        raise ConsoleError(f"N must be the number of a listed prompt (1-5), got {args.number!r}") from None
    return await services.prompt_tools.run_option(requester, args.job, number)
