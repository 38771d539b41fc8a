"""Moderation rules that do not need Discord: text normalisation, banned words, bans.

The Discord `/mod` cog (`bot/discord/moderation/`), the job service and the console all call
into this module, so a rule means the same thing wherever a prompt comes from.

Matching is deliberately "recall first" within word boundaries: a prompt is looked at through a
few normalised *views* (plain, with letter runs like ``b.a.d`` joined, with separators inside a
word removed, with digit look-alikes read as letters), and a rule that matches any view blocks
it. Every view keeps whole-word matching, so ``classic`` never matches ``ass``.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

try:  # the parser moved in 3.11; only its tree is read, to refuse catastrophic patterns
    import re._parser as _sre_parse
except ImportError:  # pragma: no cover - older Pythons
    import sre_parse as _sre_parse

from bot.core.durations import format_until
from bot.core.ports import ModerationStore

log = logging.getLogger(__name__)


def _system_clock() -> datetime:
    return datetime.now(UTC)


# The moderation clock: ban ends are computed and checked against it. One replaceable clock (not
# `datetime.now` sprinkled around) lets tests run bans on virtual time, e.g. SimCord's `env.now`.
clock: Callable[[], datetime] = _system_clock

MAX_WORD_LENGTH = 100  # a banned word or phrase, after normalisation
MAX_REGEX_LENGTH = 200  # a regular expression as typed
MAX_TEXT_LENGTH = 4000  # prompts are cut to this before matching, bounding the regex work

# Look-alike letters from other scripts that NFKC leaves alone (Cyrillic and Greek homoglyphs,
# a few Latin variants). Only letters that are visually the same as a Latin one are mapped.
_CONFUSABLES = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "в": "b",
        "е": "e",
        "ё": "e",
        "к": "k",
        "м": "m",
        "н": "h",
        "о": "o",
        "р": "p",
        "с": "c",
        "т": "t",
        "у": "y",
        "х": "x",
        "ѕ": "s",
        "і": "i",
        "ї": "i",
        "ј": "j",
        "ԁ": "d",
        "ԛ": "q",
        "ԝ": "w",
        "һ": "h",
        "ӏ": "l",
        # Greek (lower case; casefold runs first)
        "α": "a",
        "β": "b",
        "ε": "e",
        "η": "n",
        "ι": "i",
        "κ": "k",
        "ν": "v",
        "ο": "o",
        "ρ": "p",
        "τ": "t",
        "υ": "u",
        "χ": "x",
        "ω": "w",
        # Latin variants
        "ı": "i",
        "ɡ": "g",
        "ɑ": "a",
        "ſ": "s",
        "ß": "ss",
    }
)

# Digits and symbols used as letters ("b4d", "@ss"). Applied only in a separate view and only to
# tokens that also contain a letter, so "1024x1024" or "--seed 42" are never read as words.
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_TOKEN = re.compile(r"[\w@$]+")

# Separators someone might put inside a word to slip past a filter.
_SEPARATORS = r"\.\-_*~'`’·•|/\\,+:;=^"
_SINGLE_LETTER_RUN_PUNCT = re.compile(rf"(?<!\w)\w(?:[{_SEPARATORS}]+\w)+(?!\w)")
_SINGLE_LETTER_RUN_SPACE = re.compile(r"(?<!\w)\w(?:\s+\w){2,}(?!\w)")
_INNER_SEPARATOR = re.compile(rf"(?<=\w)[{_SEPARATORS}]+(?=\w)")
_SPACE_RUN = re.compile(r"\s+")
_NOT_WORD = re.compile(r"(?:[^\w\s]|_)+")


def _strip_format(text: str) -> str:
    """Drop format characters (Unicode category Cf: zero-width space/joiners, BOM, bidi marks)
    and combining marks left over after decomposition, so "b\u200bad" and "bád" read "bad"."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Mn"))


def _base(text: str) -> str:
    """Compatibility-fold, lower-case and de-confuse, keeping every separator where it was."""
    text = unicodedata.normalize("NFKC", text[:MAX_TEXT_LENGTH])
    text = unicodedata.normalize("NFKD", text.casefold())
    text = _strip_format(text).translate(_CONFUSABLES)
    return unicodedata.normalize("NFKC", text)


def _join_letter_runs(text: str) -> str:
    """ "b.a.d", "b-a-d" and "b a d" become "bad": runs of single characters joined by separators
    (two or more with punctuation, three or more with spaces, so "plan a b" stays as it is)."""
    text = _SINGLE_LETTER_RUN_PUNCT.sub(lambda m: re.sub(rf"[{_SEPARATORS}]+", "", m.group()), text)
    return _SINGLE_LETTER_RUN_SPACE.sub(lambda m: _SPACE_RUN.sub("", m.group()), text)


def _plain(text: str) -> str:
    """Punctuation (and "_") becomes a space and whitespace is folded."""
    return _SPACE_RUN.sub(" ", _NOT_WORD.sub(" ", text)).strip()


def _words_only(text: str) -> str:
    """The plain word view, with letter runs joined once more for "b . a . d", whose dots only
    now became spaces."""
    return _join_letter_runs(_plain(text))


def normalize(text: str) -> str:
    """The canonical form a prompt is matched in.

    NFKC (full-width and styled letters become plain ones), case-folded, without zero-width and
    other format characters or accents, with look-alike letters from other scripts mapped to
    Latin, letter runs such as ``b.a.d`` / ``b a d`` joined into one word, and the remaining
    punctuation turned into word breaks. Word boundaries survive: "classic" stays one word.
    """
    return _words_only(_join_letter_runs(_base(text)))


def _leet(text: str) -> str:
    def fix(match: re.Match[str]) -> str:
        token = match.group()
        letters = sum(ch.isalpha() for ch in token)
        # "b4d" and "n4z1" are words in disguise; "1024x1024" and "v5" are not.
        return token.translate(_LEET) if letters >= 2 and letters >= len(token) - letters else token

    return _LEET_TOKEN.sub(fix, text)


def views(text: str) -> list[str]:
    """Every normalised reading of `text` that rules are matched against (no duplicates)."""
    base = _base(text)
    runs = _join_letter_runs(base)
    candidates = [_words_only(runs), _plain(base)]  # the second keeps "a b a d" unjoined
    for reading in (runs, _leet(runs)):
        candidates.append(_words_only(reading))
        # "ba.d", "sh-it": separators inside a word removed
        candidates.append(_words_only(_INNER_SEPARATOR.sub("", reading)))
    return list(dict.fromkeys(candidates))


# ---------------------------------------------------------------------------------------------
# Rules
# ---------------------------------------------------------------------------------------------


class Rule(Protocol):
    """What `match_banned` needs of a rule: `storage.models.BannedWord` fits."""

    pattern: str
    is_regex: bool


@dataclass(frozen=True)
class SimpleRule:
    """A rule that is not a database row (tests, the console's built-in list)."""

    pattern: str
    is_regex: bool = False


class RuleError(ValueError):
    """A banned word or expression that cannot be used; the message says why."""


def rule_text(rule: Rule) -> str:
    """How a rule is shown to moderators and recorded on a blocked job: `word` or `/regex/`."""
    return f"/{rule.pattern}/" if rule.is_regex else rule.pattern


def _is_risky(tree: Any, inside_repeat: bool = False) -> bool:
    """True for the shapes that backtrack exponentially: an unbounded repeat inside another
    repeat (`(a+)+`), alternatives under a repeat (`(a|aa)*`), and backreferences."""
    for op, arg in tree:
        name = str(op)
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            _low, high, sub = arg
            unbounded = high == _sre_parse.MAXREPEAT or high > 100
            if inside_repeat and unbounded:
                return True
            if _is_risky(sub, inside_repeat or high > 1):
                return True
        elif name in ("GROUPREF", "GROUPREF_EXISTS"):
            return True
        elif name == "SUBPATTERN":
            if _is_risky(arg[-1], inside_repeat):
                return True
        elif name == "BRANCH":
            if inside_repeat or any(_is_risky(branch, inside_repeat) for branch in arg[1]):
                return True
        elif name in ("ASSERT", "ASSERT_NOT") and _is_risky(arg[1], inside_repeat):
            return True
    return False


def validate_rule(pattern: str, is_regex: bool) -> str:
    """Check a rule before it is stored and return the form to store.

    Words are stored normalised (so "BÀD" and "bad" are one rule). Expressions must compile, be
    short, not match every prompt, and have no nested unbounded repeats or backreferences.
    Raises `RuleError` with a message a moderator can act on.
    """
    if is_regex:
        pattern = pattern.strip()
        if not pattern:
            raise RuleError("The regular expression is empty.")
        if len(pattern) > MAX_REGEX_LENGTH:
            raise RuleError(
                f"The regular expression is {len(pattern)} characters long; the limit is {MAX_REGEX_LENGTH}."
            )
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
            tree = _sre_parse.parse(pattern, re.IGNORECASE)
        except re.error as exc:
            raise RuleError(f"The regular expression does not compile: {exc}.") from None
        if _is_risky(list(tree)):
            raise RuleError(
                "The regular expression has a repeat inside a repeat, alternatives under a repeat, "
                "or a backreference, which can take exponential time on some prompts; write it "
                "without nesting."
            )
        if compiled.search("") is not None:
            raise RuleError("The regular expression matches empty text, so it would block every prompt.")
        return pattern
    word = normalize(pattern)
    if not word:
        raise RuleError("The word is empty once spaces and punctuation are removed.")
    if len(word) > MAX_WORD_LENGTH:
        raise RuleError(f"The word or phrase is {len(word)} characters long; the limit is {MAX_WORD_LENGTH}.")
    return word


@lru_cache(maxsize=1024)
def _compile(pattern: str, is_regex: bool) -> re.Pattern[str] | None:
    """A rule as a compiled expression; None for a stored rule that no longer compiles."""
    if is_regex:
        try:
            return re.compile(pattern, re.IGNORECASE)
        except re.error:
            log.warning("banned-word expression %r does not compile; ignored", pattern)
            return None
    words = normalize(pattern).split(" ")
    if words == [""]:
        return None
    body = r"\s+".join(re.escape(word) for word in words)
    # Spelled out letter by letter ("a b a d idea" holds "b a d"): joining the whole run of
    # single letters would read "abad" and miss it.
    spelled = " ".join(re.escape(ch) for ch in "".join(words))
    return re.compile(rf"(?<!\w)(?:{body}|{spelled})(?!\w)", re.IGNORECASE)


def match_banned(texts: Iterable[str], rules: Sequence[Rule]) -> Rule | None:
    """The first rule that matches any of `texts` (prompt, negative terms, permutations), or None.

    Word rules match whole words, case-insensitively, in every normalised view of a text.
    Expressions run case-insensitively on the views and on the text itself (cut to
    `MAX_TEXT_LENGTH`), so a moderator's pattern sees what the member typed as well.
    """
    if not rules:
        return None
    compiled = [(rule, _compile(rule.pattern, bool(rule.is_regex))) for rule in rules]
    for text in texts:
        if not text:
            continue
        readings = views(text)
        for rule, expression in compiled:
            if expression is None:
                continue
            candidates = [*readings, text[:MAX_TEXT_LENGTH]] if rule.is_regex else readings
            if any(expression.search(reading) for reading in candidates):
                return rule
    return None


# ---------------------------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------------------------


class BannedError(PermissionError):
    """The member is banned: nothing of theirs is queued. The message gives reason and end."""

    def __init__(self, reason: str, until: datetime | None) -> None:
        self.reason = reason or ""
        self.until = until
        super().__init__(self.user_message)

    @property
    def user_message(self) -> str:
        reason = self.reason.strip() or "no reason given"
        return f"You are banned from making images here {format_until(self.until)}. Reason: {reason}."


class BlockedError(ValueError):
    """A banned word or expression matched. The member gets a neutral refusal that does not name
    the rule (naming it teaches how to evade it); moderators see `rule_text` on the blocked job."""

    user_message = (
        "This prompt can't be used here: it goes against this server's content rules. Please rephrase it."
    )

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        super().__init__(self.user_message)

    @property
    def rule_text(self) -> str:
        return rule_text(self.rule)


async def check_submission(
    store: ModerationStore,
    user_id: int,
    guild_id: int | None,
    texts: list[str],
    now: datetime | None = None,
) -> None:
    """Refuse a submission from a banned member or one that hits a banned word.

    Called before any job row is written for a prompt (the job service then records a
    `blocked` job for a `BlockedError`, so moderators see the attempt). Raises `BannedError` or
    `BlockedError`; returns None when the submission may go ahead.
    """
    ban = await store.active_ban(user_id, guild_id, now or clock())
    if ban is not None:
        raise BannedError(ban.reason, ban.expires_at)
    if not texts:  # a button on an earlier job: nothing new to read (the ban still counts)
        return
    rule = match_banned(texts, await store.banned_words(guild_id))
    if rule is not None:
        log.info("prompt from user %s blocked by rule %s", user_id, rule_text(rule))
        raise BlockedError(rule)


__all__ = [
    "MAX_REGEX_LENGTH",
    "MAX_TEXT_LENGTH",
    "MAX_WORD_LENGTH",
    "BannedError",
    "BlockedError",
    "Rule",
    "RuleError",
    "SimpleRule",
    "check_submission",
    "clock",
    "format_until",
    "match_banned",
    "normalize",
    "rule_text",
    "validate_rule",
    "views",
]
