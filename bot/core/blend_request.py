"""A /blend job row as an engine request (`bot.core.blend` accepts the submissions).

Apart from `bot.core.blend` because the job service builds every row's request and must not
import the service that builds on it.
"""

from __future__ import annotations

from bot.core.inputs import load_input_image
from bot.core.rules import GRID_CELLS, accepted_prompt, cell_seed
from engine.api import BLEND_MIN_IMAGES, BlendRequest, PromptSpec
from storage.files import ImageFiles
from storage.models import Job

SOURCES_KEY = "sources"  # params key of the kept source images (paths under the data directory)


async def blend_request(files: ImageFiles, job: Job) -> BlendRequest:
    """The engine request of a blend row (also of its re-rolls, which share its sources)."""
    paths = (job.params or {}).get(SOURCES_KEY) or []
    if len(paths) < BLEND_MIN_IMAGES:
        raise ValueError(f"blend job {job.id} has lost its source images")
    try:
        sources = tuple([await load_input_image(files, path) for path in paths])
    except (OSError, ValueError) as exc:
        raise ValueError(f"the source images of blend job {job.id} cannot be read ({exc})") from exc
    prompt = accepted_prompt(job)
    spec = PromptSpec(
        segments=tuple((text, float(weight)) for text, weight in prompt.segments),
        negative=tuple(prompt.negative),
    )
    seed = job.seed if job.seed is not None else 0
    seeds = tuple((job.params or {}).get("seeds") or [cell_seed(seed, i) for i in range(GRID_CELLS)])
    return BlendRequest(
        job_id=job.id,
        sources=sources,
        prompt=spec,
        seeds=seeds,
        width=job.width or 0,
        height=job.height or 0,
        quality=float(prompt.quality),
    )
