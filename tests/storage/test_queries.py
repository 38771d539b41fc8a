"""Properties of the pieces history search is built from: the LIKE escaping and the cursors."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from storage.queries import decode_cursor, encode_cursor, like_pattern

ASCII_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_db = sqlite3.connect(":memory:")


@settings(max_examples=300, deadline=None)
@given(needle=ASCII_TEXT.filter(str.strip), haystack=ASCII_TEXT)
def test_a_search_matches_exactly_when_the_text_occurs(needle: str, haystack: str) -> None:
    """Whatever a moderator types, `%`, `_` and `\\` included, is looked for literally."""
    (found,) = _db.execute("SELECT ? LIKE ? ESCAPE '\\'", (haystack, like_pattern(needle))).fetchone()
    assert bool(found) == (needle.lower() in haystack.lower())


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    job_id=st.uuids().map(str),
)
def test_a_cursor_gives_back_the_position_it_was_made_from(moment: datetime, job_id: str) -> None:
    cursor = encode_cursor(moment, job_id)
    assert cursor.isascii() and "=" not in cursor and len(cursor) <= 100  # fits a Discord custom_id
    assert decode_cursor(cursor) == (moment, job_id)
