"""shorten (/shorten): how much each word of a prompt moves the text encoder's embedding.

Ablation: the prompt is encoded whole and once without each word, and a word's score is the
cosine distance between the two encodings, each the mean over the token positions of the
sequence the UNet attends to (the text encoder's last hidden states; both encoders' for SDXL).
The mean rather than the whole sequence compared position by position: dropping a word shifts
every later token, and a position-by-position comparison then ranks early words high for where
they stand (on the toy model it put "a" third of twelve words). A word the encoder barely
notices (an article, a preposition) scores near 0.
"""

from __future__ import annotations

import torch

from engine.api import ShortenRequest
from engine.models import LoadedModel
from engine.ops.generate import OpResult
from engine.ops.guidance import _encode

MAX_WORDS = 200  # far beyond the 77 tokens a CLIP encoder reads; a bound on the work
CHUNK = 16  # prompts encoded per text-encoder call, so memory stays small for long prompts


def score_words(model: LoadedModel, words: tuple[str, ...]) -> list[float]:
    """One cosine distance per word (0: no effect; larger: the word matters more)."""
    if not words:
        raise ValueError("/shorten needs a prompt with at least one word")
    if len(words) > MAX_WORDS:
        raise ValueError(f"/shorten reads at most {MAX_WORDS} words; this prompt has {len(words)}")
    texts = [" ".join(words)] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    encodings: list[torch.Tensor] = []
    with torch.no_grad():
        for start in range(0, len(texts), CHUNK):
            embeds, _ = _encode(model, texts[start : start + CHUNK])
            encodings.append(embeds.float().mean(dim=1).cpu())
    flat = torch.cat(encodings)
    similarity = torch.nn.functional.cosine_similarity(flat[:1], flat[1:], dim=1)
    return [max(0.0, round(float(1.0 - s), 6)) for s in similarity]


def run_shorten(model: LoadedModel, req: ShortenRequest) -> OpResult:
    return OpResult(images=[], seeds=[], timings={}, scores=score_words(model, req.words))
