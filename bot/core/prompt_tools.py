"""/shorten and /describe: questions to the engine whose answer is prompts, each one a button.

Both are short engine calls (one text-encoder pass per word; one captioner pass) with no
picture of their own, so they do not wait in the fair queue for a grid slot: the engine is asked
directly, and only when it has answered is the job recorded, done, with the answer in its params
(`Store.record_answer`). A refused or interrupted question leaves nothing behind. The recorded
job is what makes the answer's buttons work after a restart: a button names the job and the
option's number, and the prompt is read back from the row. An option runs as an ordinary
/imagine job whose parent is the answer, so the lineage shows where the prompt came from.

/shorten ranks words by ablation (see `engine/ops/shorten.py`): the score of a word is the cosine
distance between the text encoder's output for the whole description and for the description
without that word. The shorter prompts keep the best-scoring words, in their original order, at
about 80%, 65%, 50%, 35% and 20% of the words, each with the prompt's parameters.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.core.inputs import remove_input_images, save_input_image
from bot.core.jobs import JobService
from bot.core.moderation import check_submission
from bot.core.rules import JobError, Requester
from bot.prompt import PromptError, expand_permutations, parse_prompt
from engine.api import (
    DescribeRequest,
    EngineClient,
    EngineError,
    EngineRequest,
    Failed,
    Finished,
    ImageData,
    ShortenRequest,
)
from storage.models import Job, JobKind, new_job_id
from storage.records import JobFields

log = logging.getLogger(__name__)

SHORTEN_OPTIONS = 5
SHORTEN_KEEP = (0.8, 0.65, 0.5, 0.35, 0.2)  # shares of the words each shorter prompt keeps
DESCRIBE_PROMPTS = 4
OPTIONS_KEY = "options"  # params key of the prompts an answer offers
RANKING_KEY = "ranking"  # params key of /shorten's [word, score] pairs, in prompt order
NO_CAPTIONER = (
    "/describe is not set up on this bot: the operator needs to set IMAGINE_CAPTIONER to a "
    "captioning model folder (BLIP, for example)."
)


@dataclass(frozen=True)
class WordScore:
    word: str
    score: float


def shorter_prompts(words: Sequence[str], scores: Sequence[float], limit: int = SHORTEN_OPTIONS) -> list[str]:
    """Up to `limit` distinct shorter descriptions: the best-scoring words, in prompt order."""
    order = sorted(range(len(words)), key=lambda i: (-scores[i], i))
    found: list[str] = []
    for share in SHORTEN_KEEP:
        keep = max(1, round(len(words) * share))
        if keep >= len(words):
            continue
        kept = sorted(order[:keep])
        text = " ".join(words[i] for i in kept)
        if text not in found:
            found.append(text)
    return found[:limit]


def ranking(job: Job) -> list[WordScore]:
    """/shorten's words with their scores, most important first (ties in prompt order)."""
    pairs = [WordScore(str(word), float(score)) for word, score in (job.params or {}).get(RANKING_KEY, [])]
    return sorted(pairs, key=lambda pair: -pair.score)


def options(job: Job) -> list[str]:
    """The prompts an answer offers, in button order (1 first)."""
    return [str(option) for option in (job.params or {}).get(OPTIONS_KEY, [])]


class PromptTools:
    """/shorten, /describe, and running one of their prompts."""

    def __init__(self, jobs: JobService, engine: EngineClient, *, captioner: str | None) -> None:
        self.jobs = jobs
        self.store = jobs.store
        self.engine = engine
        self.captioner = captioner

    async def shorten(self, requester: Requester, raw_prompt: str) -> Job:
        """Rank the prompt's words and record up to five shorter prompts.

        Raises `PromptError` (a bad prompt, or one /shorten cannot read: permutations, `::`
        weights, image links), `BannedError`/`BlockedError`, `JobError` (the engine refused).
        """
        text = " ".join(raw_prompt.split())
        if not text:
            raise PromptError("the prompt is empty; give /shorten the prompt to shorten")
        if len(expand_permutations(text)) > 1:
            raise PromptError("/shorten reads one prompt; leave out the `{…}` permutations")
        prompt = parse_prompt(text)
        if prompt.image_urls or prompt.style_ref or prompt.omni_ref:
            raise PromptError(
                "/shorten reads the words of a prompt; leave the image links out (also --sref, --oref)"
            )
        if len(prompt.segments) > 1 or "::" in prompt.text:
            raise PromptError("/shorten reads one description; leave out the `::` weights")
        words = prompt.text.split()
        if not words:
            raise PromptError("the prompt has parameters but no words to shorten")
        await check_submission(self.store, requester.user_id, requester.guild_id, [prompt.text])
        job_id = new_job_id()
        answer = await self._ask(ShortenRequest(job_id, tuple(words)))
        if len(answer.scores) != len(words):
            raise JobError("the engine gave no score for some words; please try again")
        shorter = shorter_prompts(words, answer.scores)
        parameters = prompt.parameters
        params = {
            RANKING_KEY: [[word, score] for word, score in zip(words, answer.scores, strict=True)],
            OPTIONS_KEY: [f"{option} {parameters}".strip() for option in shorter],
        }
        return await self._record(
            requester, job_id, JobKind.SHORTEN, raw_prompt=raw_prompt, prompt=str(prompt), params=params
        )

    async def describe(self, requester: Requester, image: ImageData) -> Job:
        """Four prompts for `image`; the image is kept with the answer (`inputs/`).

        Raises `JobError` (no captioner configured, or the engine refused), `BannedError`.
        """
        if not self.captioner:
            raise JobError(NO_CAPTIONER)
        await check_submission(self.store, requester.user_id, requester.guild_id, [])
        job_id = new_job_id()
        answer = await self._ask(DescribeRequest(job_id, image, count=DESCRIBE_PROMPTS))
        prompts = [" ".join(text.split()) for text in answer.texts if text.strip()]
        if not prompts:
            raise JobError("the captioning model found no words for this image")
        saved = await save_input_image(self.store.files, job_id, image)
        params = {OPTIONS_KEY: prompts, "image": saved}
        try:
            return await self._record(
                requester,
                job_id,
                JobKind.DESCRIBE,
                raw_prompt="",
                prompt=prompts[0],
                params=params,
                size=(image.width, image.height),
            )
        except BaseException:
            await remove_input_images(self.store.files, [saved])
            raise

    async def run_option(self, requester: Requester, answer_id: str, number: int) -> list[Job]:
        """Imagine option `number` (1-based) of a recorded answer, as a job derived from it."""
        answer = await self.jobs.get_visible_job(answer_id)
        offered = options(answer) if answer.kind in (JobKind.SHORTEN, JobKind.DESCRIBE) else []
        if not offered:
            raise JobError(f"job {answer.id} offers no prompts to run")
        if not 1 <= number <= len(offered):
            raise JobError(f"job {answer.id} offers prompts 1-{len(offered)}; there is no prompt {number}")
        return await self.jobs.imagine(requester, offered[number - 1], parent_id=answer.id)

    async def _ask(self, request: EngineRequest) -> Finished:
        """The engine's answer, or a `JobError` with its reason."""
        final: Finished | Failed | None = None
        try:
            async for event in self.engine.submit(request):
                if isinstance(event, Finished | Failed):
                    final = event
        except EngineError as exc:
            raise JobError(f"the engine is not available right now ({exc}); please try again") from exc
        if isinstance(final, Finished):
            return final
        reason = final.reason if final is not None else "the engine ended without an answer"
        log.info("%s refused: %s", request.kind, reason)
        raise JobError(_sentence(reason))

    async def _record(
        self,
        requester: Requester,
        job_id: str,
        kind: JobKind,
        *,
        raw_prompt: str,
        prompt: str,
        params: dict[str, Any],
        size: tuple[int, int] | None = None,
    ) -> Job:
        fields = JobFields(
            id=job_id,
            kind=kind.value,
            source=requester.source,
            user_id=requester.user_id,
            user_name=requester.user_name,
            guild_id=requester.guild_id,
            channel_id=requester.channel_id,
            raw_prompt=raw_prompt,
            prompt=prompt,
            params=params,
            model=self.jobs.model_name,
        )
        if size is not None:
            fields["width"], fields["height"] = size
        job = await self.store.record_answer(**fields)
        log.info("%s answered with %d prompt(s)", kind.value, len(params[OPTIONS_KEY]))
        return job


def _sentence(reason: str) -> str:
    """An engine reason as a sentence a member reads: capitalised, with a full stop."""
    reason = reason.strip() or "the engine refused"
    reason = reason[0].upper() + reason[1:]
    return reason if reason.endswith((".", "!", "?")) else reason + "."
