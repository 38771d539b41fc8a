"""The toy model's own CLIP tokenizer: every word of the world is one token.

A real `CLIPTokenizer` (byte-level BPE, start and end tokens, padding, truncation), saved with the
model, so the pipeline tokenizes exactly as a Stable Diffusion checkpoint does. Its merges build
each known word from its letters; a word outside the world splits into letters the model never
learned to read, which is how `unknown_words` tells them apart.
"""

from __future__ import annotations

import itertools

from transformers import CLIPTokenizer

from engine.builders import byte_symbols  # the tiny models' byte stand-ins, the same 256
from engine.training.captions import BACKGROUND_PHRASES, PLACE_PHRASES, SYNONYMS
from engine.training.world import COLOURS, OBJECTS, SIZES

MAX_TOKENS = 40  # start, end and up to 38 words: the longest three-object caption (34) fits

_FUNCTION_WORDS = ("a", "an", "one", "and")


def world_words() -> list[str]:
    """Every word a caption can hold, sorted (the model card lists them)."""
    words: set[str] = set(_FUNCTION_WORDS) | set(COLOURS) | set(OBJECTS) | set(SIZES)
    for names in SYNONYMS.values():
        words.update(names)
    for phrases in (*PLACE_PHRASES.values(), *BACKGROUND_PHRASES.values()):
        for phrase in phrases:
            words.update(phrase.split())
    return sorted(words)


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """Greedy byte-pair merging of one word, as CLIP's tokenizer does it (lowest rank first)."""
    pieces = [*word[:-1], word[-1] + "</w>"]
    while len(pieces) > 1:
        pairs = [(ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(itertools.pairwise(pieces))]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        pieces[i : i + 2] = [pieces[i] + pieces[i + 1]]
    return pieces


def build_tokenizer(words: list[str] | None = None) -> CLIPTokenizer:
    """Bytes as the base vocabulary, then merges added until every world word is one token.

    BPE merges the lowest-ranked pair anywhere in a word, so one word's merges can cut into
    another's ("c l" of "clear" splits "circle"). Each round tokenizes every word as CLIP would
    and, for a word still in pieces, appends the merge of its first two pieces; new merges rank
    last, and the rounds repeat until every word comes out whole.
    """
    words = words or world_words()
    symbols = byte_symbols()
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab.setdefault(s, len(vocab))
    for s in symbols:
        vocab.setdefault(s + "</w>", len(vocab))
    ranks: dict[tuple[str, str], int] = {}
    for _round in range(200):
        changed = False
        for word in words:
            pieces = _bpe(word, ranks)
            if len(pieces) > 1:
                ranks[(pieces[0], pieces[1])] = len(ranks)
                vocab.setdefault(pieces[0] + pieces[1], len(vocab))
                changed = True
        if not changed:
            break
    else:
        raise RuntimeError("the toy vocabulary's merges did not settle")
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    merges = sorted(ranks, key=ranks.__getitem__)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    tokenizer.model_max_length = MAX_TOKENS
    return tokenizer
