"""Cursor (keyset) pagination for list routes: opaque cursors, bounded page sizes.

A list route fetches ``limit + 1`` rows ordered by a unique sort key, after the position its cursor names, and
answers with :class:`Page`: the first ``limit`` rows and, when there was one more, the cursor of the next page.

A cursor is the base64url of a small JSON document holding the last row's sort key and a fingerprint of the
route's filters; a cursor that does not decode, or that was made for other filters, is a 400 naming
``query.cursor``. Opaque means clients must not build cursors, not that they are secret: they hold only values
the client already saw.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
from typing import Annotated, Any, Callable, Generic, Iterable, Mapping, Sequence, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from smartcity.api.problems import bad_request

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
MAX_CURSOR_LENGTH = 1024
MAX_CURSOR_INT = 10**12  # epoch seconds and counters fit; a forged huge number does not reach SQL

Item = TypeVar("Item")

PageSize = Annotated[
    int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"Items per page, 1 to {MAX_PAGE_SIZE}.")
]
Cursor = Annotated[
    str | None,
    Query(max_length=MAX_CURSOR_LENGTH, description="The `next_cursor` of the previous page; absent for the first."),
]


class Page(BaseModel, Generic[Item]):
    """One page of a list, and the cursor of the next one (null on the last page)."""

    items: list[Item]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null when this is the last.")


def filters_fingerprint(filters: Mapping[str, Any]) -> str:
    """A short digest of a route's filters: a cursor only continues the listing it came from."""
    canonical = json.dumps(filters, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(canonical.encode(), digest_size=6).hexdigest()


def encode_cursor(position: Sequence[Any], filters: Mapping[str, Any]) -> str:
    document = {"after": list(position), "filters": filters_fingerprint(filters)}
    raw = json.dumps(document, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, filters: Mapping[str, Any], kinds: Sequence[type]) -> list[Any] | None:
    """The sort-key position a cursor names, one value of each of ``kinds`` (str or int); None for no cursor.

    A 400 naming ``query.cursor`` when it does not decode, has other values, or was made for other filters.
    """
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        document = json.loads(raw)
        position = document["after"]
        fingerprint = document["filters"]
    except (binascii.Error, ValueError, TypeError, KeyError):
        raise bad_request("query.cursor", "not a cursor this API issued") from None
    if not _position_of_kinds(position, kinds):
        raise bad_request("query.cursor", "not a cursor this API issued")
    if fingerprint != filters_fingerprint(filters):
        raise bad_request("query.cursor", "this cursor belongs to a listing with other filters")
    return position


def _position_of_kinds(position: Any, kinds: Sequence[type]) -> bool:
    if not isinstance(position, list) or len(position) != len(kinds):
        return False
    for value, kind in zip(position, kinds):
        if kind is int and not (isinstance(value, int) and not isinstance(value, bool) and abs(value) < MAX_CURSOR_INT):
            return False
        if kind is not int and not isinstance(value, kind):
            return False
    return True


def page_of(
    rows: Sequence[Item], limit: int, position: Callable[[Item], Sequence[Any]], filters: Mapping[str, Any]
) -> tuple[list[Item], str | None]:
    """Split ``limit + 1`` fetched rows into the page and the next cursor (None when no row was left over)."""
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    return items, encode_cursor(position(items[-1]), filters)


def page_by_key(
    page_model: type[Page[Item]],
    items: Iterable[Item],
    key: Callable[[Item], str],
    limit: int,
    cursor: str | None,
    filters: Mapping[str, Any],
) -> Page[Item]:
    """A page of in-memory items (a few thousand at most) sorted here by a unique string key."""
    def in_order(after: str | None) -> list[Item]:
        return sorted((item for item in items if after is None or key(item) > after), key=key)

    return page_in_key_order(page_model, in_order, key, limit, cursor, filters)


def page_in_key_order(
    page_model: type[Page[Item]],
    items_after: Callable[[str | None], Iterable[Item]],
    key: Callable[[Item], str],
    limit: int,
    cursor: str | None,
    filters: Mapping[str, Any],
) -> Page[Item]:
    """A page of the items ``items_after(after)`` yields already in order of a unique string key (a store's index),
    those after the cursor's; no more than ``limit + 1`` of them are read."""
    after = decode_cursor(cursor, filters, (str,))
    rows = list(itertools.islice(items_after(None if after is None else after[0]), limit + 1))
    page, next_cursor = page_of(rows, limit, lambda item: [key(item)], filters)
    return page_model(items=page, next_cursor=next_cursor)
