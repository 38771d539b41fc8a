"""Which words of a prompt a closed-vocabulary model (the toy model) never learned."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.prompt.parsed import Prompt


def unknown_words(prompt: Prompt, vocabulary: Sequence[str]) -> list[str]:
    """The words of the prompt's text and `--no` terms that a closed-vocabulary model never learned.

    Empty when the model's vocabulary is open (`vocabulary` empty). One-letter words are never
    reported: every tokenizer reads them. The prompt still runs; the front end says which words
    the model draws without.
    """
    if not vocabulary:
        return []
    known = set(vocabulary)
    texts = [text for text, _ in prompt.segments] + list(prompt.negative)
    words = re.findall(r"[^\W\d_]+", " ".join(texts).lower())
    return [w for w in dict.fromkeys(words) if len(w) > 1 and w not in known]
