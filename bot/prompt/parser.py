"""`parse_prompt`: image URLs first, then the description (with `::` weights), then the parameters."""

from __future__ import annotations

import re
from fractions import Fraction
from urllib.parse import urlsplit

from bot.prompt.parameters import DECIMAL, GLUED_MARKER, MARKER, parse_parameters
from bot.prompt.parsed import (
    Prompt,
    PromptError,
    check_input_length,
    check_prompt_length,
    weights_sum_message,
)

# `::` weights are kept finite and readable; Midjourney's own examples stay within a few hundred.
MAX_WEIGHT = 10_000
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".webp")
# A `::` weight sits right after the colons and ends at a space or the end of the text.
_WEIGHT = re.compile(rf"-?{DECIMAL}(?=\s|\Z)")


def _image_url(token: str) -> str | None:
    """The URL if `token` is a direct image link (`<…>` as Discord writes it is accepted)."""
    if token.startswith("<") and token.endswith(">"):
        token = token[1:-1]
    if not token.startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(token)
    except ValueError:  # e.g. a malformed IPv6 host: not a URL we can fetch, so plain text
        return None
    if not parts.netloc or not parts.path.lower().endswith(IMAGE_EXTENSIONS):
        return None
    return token


def _parse_segments(body: str) -> list[tuple[str, float]]:
    """Split `a::2 b:: c::-.5` into segments; a weight right after `::` belongs to the part before."""
    if "::" not in body:
        return [(body, 1.0)]
    parts = body.split("::")
    current: str | None = parts[0].strip()
    if not current:
        raise PromptError("The prompt starts with `::`; put the words for that part before the `::`.")
    texts: list[str] = []
    weights: list[str | None] = []
    last = len(parts) - 1
    for index, part in enumerate(parts[1:], start=1):
        match = _WEIGHT.match(part)
        weight = match[0] if match else None
        rest = part[match.end() :].strip() if match else part.strip()
        assert current is not None
        texts.append(current)
        weights.append(weight)
        if not rest and index != last:
            raise PromptError(
                f"Part {index + 1} of the `::` multi-prompt is empty; put some words between the `::`s."
            )
        current = rest or None
    if current is not None:
        texts.append(current)
        weights.append(None)

    values: list[float] = []
    total = Fraction(0)
    for text, weight in zip(texts, weights, strict=True):
        value = 1.0 if weight is None else float(weight)
        if abs(value) > MAX_WEIGHT:
            raise PromptError(
                f"The `::` weight {weight} of `{text}` is too large; weights go from "
                f"-{MAX_WEIGHT:,} to {MAX_WEIGHT:,}."
            )
        values.append(value)
        total += Fraction(repr(value))
    if total <= 0:
        raise PromptError(weights_sum_message(total))
    return list(zip(texts, values, strict=True))


def parse_prompt(text: str, *, has_image: bool = False) -> Prompt:
    """Read one prompt (after permutations were expanded) into a `Prompt`.

    Image URLs lead, the description follows, and the first `--name` (or `—name`) starts the
    parameters, which run to the end. `{` and `}` are plain characters here: call
    `expand_permutations` first to get one string per `{a, b}` choice. `has_image` says an image
    comes with the prompt another way (a Discord attachment), which is what `--iw` weighs.

    What is accepted reads back equal from its canonical form: `parse_prompt(str(p)) == p`.
    """
    check_input_length(text)
    tokens = GLUED_MARKER.sub(" --", text).split()
    if not tokens:
        raise PromptError("The prompt is empty: describe what you want to see, e.g. `a lighthouse at dusk`.")
    count = len(tokens)
    start = 0
    urls: list[str] = []
    while start < count and (url := _image_url(tokens[start])) is not None:
        urls.append(url)
        start += 1
    end = start
    while end < count:
        token = tokens[end]
        if token[0] in "-—" and MARKER.match(token):
            break
        end += 1
    fields = parse_parameters(tokens[end:]) if end < count else {}
    if end == start:
        where = "after the image URL" if urls else "before the parameters" if fields else ""
        raise PromptError(
            f"The prompt has no description: add words {where} that say what you want to see."
            if where
            else "The prompt is empty: describe what you want to see."
        )
    if fields.get("image_weight") is not None and not urls and not has_image:
        raise PromptError(
            "`--iw` sets how much an image prompt counts, but this prompt has no image: put an image "
            "URL at the front of the prompt or attach an image, or leave `--iw` out.",
            "image_weight",
        )
    for weight, reference, what in (
        ("style_weight", "style_ref", "--sw"),
        ("omni_weight", "omni_ref", "--ow"),
    ):
        if fields.get(weight) is not None and fields.get(reference) is None:
            flag = "--sref" if reference == "style_ref" else "--oref"
            raise PromptError(
                f"`{what}` sets how much a `{flag}` picture counts, but this prompt has none: add "
                f"`{flag}` with a link to the picture, or leave `{what}` out.",
                weight,
            )
    body = " ".join(tokens[start:end])
    prompt = Prompt(text=body, segments=_parse_segments(body), image_urls=urls, **fields)
    check_prompt_length(prompt)
    return prompt
