"""Cursor pagination: pages follow one another without gaps or repeats; foreign or broken cursors are a 400."""

from __future__ import annotations

import base64
import json

import pytest

from smartcity.api.pagination import decode_cursor, encode_cursor, page_of
from smartcity.api.problems import ProblemError

ROWS = [{"ts": f"2026-01-01T00:{minute:02d}:00Z", "id": f"s{minute % 3}"} for minute in range(10)]
FILTERS = {"sensor": "s1", "since": "2026-01-01"}


def position(row):
    return [row["ts"], row["id"]]


def fetch_after(after, limit):
    """What a route's SQL does: rows after the position, in sort order, limit + 1 of them."""
    rows = [row for row in ROWS if after is None or position(row) > after]
    return rows[: limit + 1]


def test_pages_cover_every_row_once_in_order():
    seen, cursor = [], None
    while True:
        items, cursor = page_of(fetch_after(decode_cursor(cursor, FILTERS, (str, str)), 4), 4, position, FILTERS)
        seen.extend(items)
        if cursor is None:
            break
    assert seen == ROWS


def test_the_last_page_has_no_cursor_even_when_full():
    items, cursor = page_of(ROWS[:5], 5, position, FILTERS)
    assert len(items) == 5 and cursor is None


def problem(cursor, filters=FILTERS) -> ProblemError:
    with pytest.raises(ProblemError) as refused:
        decode_cursor(cursor, filters, (str, str))
    assert refused.value.status == 400
    assert refused.value.errors[0].field == "query.cursor"
    return refused.value


def test_a_cursor_from_other_filters_is_refused():
    cursor = encode_cursor(["2026-01-01T00:03:00Z", "s0"], FILTERS)
    assert "other filters" in problem(cursor, {**FILTERS, "sensor": "s2"}).detail


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%not-base64",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps([1, 2]).encode()).decode(),
        base64.urlsafe_b64encode(json.dumps({"after": "x", "filters": "y"}).encode()).decode(),
        encode_cursor(["only-one-value"], FILTERS),
        encode_cursor(["2026-01-01T00:03:00Z", 7], FILTERS),
    ],
)
def test_a_broken_cursor_is_refused(cursor):
    assert "not a cursor" in problem(cursor).detail
