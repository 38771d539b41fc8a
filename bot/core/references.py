"""`--sref` and `--oref`: the reference pictures of a prompt, from its links to the engine.

A front end asks `reference_urls` which links a submission needs (which also refuses them at
once when the engine has no IP-Adapter, before anything is fetched), fetches each with the
SSRF-safe fetcher (`bot.core.fetch.fetch_image`, as for image prompts) and hands the pictures to
`JobService.imagine`, which keeps them under `inputs/` with the job (so it runs after a restart
and its re-rolls reuse them) and names them in `params["references"]`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from bot.core.inputs import load_input_image, save_input_image
from bot.core.ports import ImageFetcher
from bot.prompt import Prompt, PromptError
from engine.api import ImageData, ModelInfo, Reference
from storage.files import ImageFiles
from storage.records import JSONValue

REFERENCES_KEY = "references"  # params key: [{"path", "weight", "kind"}, ...]
DEFAULT_WEIGHT = 100  # Midjourney's default --sw and --ow
NO_ADAPTER = (
    "`--sref` and `--oref` are not set up on this bot: the operator needs to set IMAGINE_IP_ADAPTER "
    "to an IP-Adapter folder (ip-adapter*.safetensors and image_encoder/)."
)


def prompt_references(prompt: Prompt) -> list[tuple[str, int, str]]:
    """(url, weight, kind) for each reference of `prompt`, style first."""
    found = []
    if prompt.style_ref is not None:
        found.append((prompt.style_ref, prompt.style_weight or DEFAULT_WEIGHT, "style"))
    if prompt.omni_ref is not None:
        found.append((prompt.omni_ref, prompt.omni_weight or DEFAULT_WEIGHT, "omni"))
    return found


def reference_urls(info: ModelInfo, prompts: Iterable[Prompt]) -> list[str]:
    """The distinct links to fetch for these prompts; `PromptError` when the engine cannot use them."""
    urls = list(dict.fromkeys(url for prompt in prompts for url, _, _ in prompt_references(prompt)))
    if urls and not info.references:
        raise PromptError(NO_ADAPTER)
    return urls


async def fetch_references(urls: Sequence[str], fetch: ImageFetcher) -> dict[str, ImageData]:
    """Each link's picture, through the SSRF-safe fetcher (its `ImageFetchError` says why not)."""
    return {url: await fetch(url) for url in urls}


async def save_references(
    files: ImageFiles, job_id: str, pictures: Mapping[str, ImageData]
) -> dict[str, str]:
    """Keep each picture as `inputs/<job id>-ref<n>.png`; url -> path under the data directory."""
    saved: dict[str, str] = {}
    for number, (url, picture) in enumerate(pictures.items(), start=1):
        saved[url] = await save_input_image(files, f"{job_id}-ref{number}", picture)
    return saved


def reference_params(prompt: Prompt, saved: Mapping[str, str]) -> dict[str, JSONValue]:
    """The `params` entry of one job's references (empty when it has none)."""
    entries: list[JSONValue] = []
    for url, weight, kind in prompt_references(prompt):
        if url not in saved:
            raise PromptError(f"the reference picture {url} was not fetched; please try again")
        entries.append({"path": saved[url], "weight": weight, "kind": kind})
    return {REFERENCES_KEY: entries} if entries else {}


async def load_references(files: ImageFiles, params: Mapping[str, object]) -> tuple[Reference, ...]:
    """The engine's `Reference`s of a job row."""
    entries = params.get(REFERENCES_KEY) or []
    assert isinstance(entries, list)
    loaded = []
    for entry in entries:
        picture = await load_input_image(files, str(entry["path"]))
        loaded.append(
            Reference(picture, float(entry["weight"]), "omni" if entry["kind"] == "omni" else "style")
        )
    return tuple(loaded)
