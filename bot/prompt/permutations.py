"""`expand_permutations`: `{a, b}` groups become one prompt string per combination, before parsing."""

from __future__ import annotations

from typing import Any

from bot.prompt.parsed import PromptError, check_input_length

MAX_PERMUTATIONS = 40
# `{…}` groups nest at most this deep; a deeper nesting is never a real prompt, and the limit keeps
# the expansion's recursion shallow whatever a user pastes.
MAX_BRACE_DEPTH = 16

# A parsed template: a sequence of literal strings and groups; a group is a list of sequences.
_Seq = list["str | _Group"]


class _Group(list[Any]):  # list[_Seq]
    pass


_ESCAPABLE = ",{}"


def _parse_template(text: str) -> _Seq:
    """Parse `{…}` groups without recursion (so no input can exhaust the stack)."""
    root: _Seq = []
    stack: list[tuple[_Group, _Seq]] = []  # (the open group, its current option)
    sequence = root
    literal: list[str] = []
    index = 0
    length = len(text)
    open_at: list[int] = []
    too_deep = False
    while index < length:
        char = text[index]
        if char == "\\" and index + 1 < length and text[index + 1] in _ESCAPABLE:
            literal.append(text[index + 1])
            index += 2
            continue
        if char == "{":
            # Too deep is reported after the scan, so an unclosed `{` gets the more useful message.
            too_deep = too_deep or len(stack) >= MAX_BRACE_DEPTH
            sequence.append("".join(literal))
            literal = []
            group = _Group()
            option: _Seq = []
            group.append(option)
            sequence.append(group)
            stack.append((group, sequence))
            open_at.append(index)
            sequence = option
        elif char == "," and stack:
            sequence.append("".join(literal))
            literal = []
            option = []
            stack[-1][0].append(option)
            sequence = option
        elif char == "}":
            if not stack:
                raise PromptError(
                    f"There is a `}}` without a matching `{{` (character {index + 1}). "
                    "Write `\\}` for a literal brace."
                )
            sequence.append("".join(literal))
            literal = []
            _, sequence = stack.pop()
            open_at.pop()
        else:
            literal.append(char)
        index += 1
    if stack:
        raise PromptError(
            f"The `{{` at character {open_at[0] + 1} is never closed; add a `}}` (or write `\\{{` for a "
            "literal brace)."
        )
    if too_deep:
        raise PromptError(f"The `{{…}}` groups are nested more than {MAX_BRACE_DEPTH} deep.")
    sequence.append("".join(literal))
    return root


def _count(sequence: _Seq) -> int:
    total = 1
    for item in sequence:
        if isinstance(item, _Group):
            total *= sum(_count(option) for option in item)
    return total


def _expand(sequence: _Seq) -> list[str]:
    results = [""]
    for item in sequence:
        if isinstance(item, _Group):
            choices = [choice.strip() for option in item for choice in _expand(option)]
        else:
            choices = [item]
        results = [head + choice for head in results for choice in choices]
    return results


def expand_permutations(text: str) -> list[str]:
    """Expand `{a, b}` groups into one prompt string per combination, in order.

    Groups nest (`{a, b {c, d}}` is three prompts), several groups multiply, and groups work
    inside parameters too (`--ar {1:1, 16:9}`). `\\,`, `\\{` and `\\}` are literal characters.
    More than `MAX_PERMUTATIONS` results is an error that says how many there would be.
    """
    check_input_length(text)
    if not text.strip():
        raise PromptError("The prompt is empty: describe what you want to see, e.g. `a lighthouse at dusk`.")
    if "{" not in text and "}" not in text and "\\" not in text:
        return [" ".join(text.split())]
    template = _parse_template(text)
    count = _count(template)
    if count > MAX_PERMUTATIONS:
        shown = f"{count:,}" if count < 10**9 else "over a billion"
        raise PromptError(
            f"The `{{…}}` permutations make {shown} prompts; the limit is {MAX_PERMUTATIONS}. "
            "Use fewer options or fewer groups."
        )
    return [" ".join(result.split()) for result in _expand(template)]
