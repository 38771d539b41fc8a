"""What a saved picture says about how it was made: its PNG text chunks.

Every stored PNG carries the job's full prompt, its seed, the model and the parameters, so a
picture copied out of the data directory still explains itself. Three keys:

- `parameters`: Automatic1111's "infotext" (the prompt, `Negative prompt: ...`, then
  `Key: value, ...`), which A1111, ComfyUI, Civitai and most image viewers read;
- `prompt`: the canonical prompt, parameters included, as Imagine reads it back;
- `imagine`: JSON with the job id, kind, parent, seed, model, size and the parsed prompt.

`/show` and `imagine show` print the `parameters` text read back from the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from bot.core.ports import JobStore
from bot.core.remix import REMIX_KEY
from bot.core.rules import accepted_prompt
from bot.prompt import PromptError
from storage.models import Job

log = logging.getLogger(__name__)

PARAMETERS_KEY = "parameters"


def _infotext_value(value: Any) -> str:
    """An infotext value; one holding `,` `:` or a newline is quoted as JSON, as A1111 does."""
    text = str(value)
    return json.dumps(text) if any(mark in text for mark in ",:\n") else text


def picture_text(job: Job, seed: int | None, width: int, height: int, *, cell: int | None) -> dict[str, str]:
    """The text chunks of one picture of `job` (`cell` None: the 2x2 grid, whose seed is the first)."""
    try:
        prompt = accepted_prompt(job)
        text, negative, parsed = prompt.text, list(prompt.negative), prompt.to_dict()
    except PromptError:  # a row from before prompts were kept parsed, unreadable now: keep the words
        text, negative, parsed = job.prompt, [], None
    pairs: dict[str, Any] = {
        "Seed": seed,
        "Size": f"{width}x{height}",
        "Model": job.model,
        "Imagine job": job.id,
        "Imagine kind": job.kind,
    }
    if job.parent_id:
        pairs["Imagine parent"] = f"{job.parent_id} image {(job.parent_index or 0) + 1}"
    if parsed is not None:
        pairs.update({"Stylize": parsed["stylize"], "Chaos": parsed["chaos"], "Quality": parsed["quality"]})
        if parsed["style"]:
            pairs["Style"] = parsed["style"]
    infotext = "\n".join(
        [
            text,
            *([f"Negative prompt: {', '.join(negative)}"] if negative else []),
            ", ".join(
                f"{key}: {_infotext_value(value)}" for key, value in pairs.items() if value is not None
            ),
        ]
    )
    facts: dict[str, Any] = {
        "job_id": job.id,
        "kind": job.kind,
        "parent_id": job.parent_id,
        "parent_index": job.parent_index,
        "cell": cell,
        "seed": seed,
        "model": job.model,
        "width": width,
        "height": height,
        "prompt": job.prompt,
        "parsed_prompt": parsed,
    }
    remixed_from = (job.params or {}).get(REMIX_KEY)
    if remixed_from is not None:
        facts["remixed_from"] = remixed_from
    return {
        PARAMETERS_KEY: infotext,
        "prompt": job.prompt,
        "imagine": json.dumps(facts, ensure_ascii=False, sort_keys=True),
        "Software": "Imagine",
    }


def job_texts(
    job: Job, seeds: Sequence[int], sizes: Sequence[tuple[int, int]], grid_size: tuple[int, int] | None
) -> list[dict[str, str]]:
    """The text chunks of each picture a job stores: its images, then its grid (if any)."""
    texts = [
        picture_text(job, seed, width, height, cell=n)
        for n, (seed, (width, height)) in enumerate(zip(seeds, sizes, strict=True))
    ]
    if grid_size is not None:
        texts.append(picture_text(job, seeds[0] if seeds else None, *grid_size, cell=None))
    return texts


def saved_parameters(store: JobStore, job: Job) -> str | None:
    """The `parameters` text saved in the job's first image, read back from the file (None when
    the job has no image, or its file predates these chunks or cannot be read)."""
    cells = job.cells
    if not cells:
        return None
    try:
        return store.files.read_text(cells[0].path).get(PARAMETERS_KEY)
    except (OSError, ValueError):
        log.warning("could not read the PNG text of job %s", job.id, exc_info=True)
        return None


__all__ = ["PARAMETERS_KEY", "job_texts", "picture_text", "saved_parameters"]
