"""The document store contract: collections of JSON documents keyed by ``_id``.

Filters are the MongoDB subset the platform uses: equality on (dotted) fields, and the operators ``$in``,
``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$ne``. Sorting is by one or more (field, 1 | -1) pairs.

Rules both backends enforce the same way (FerretDB's limits among them): ``_id`` is a non-empty string; field
names neither start with ``$`` nor contain ``.``; values are JSON values or datetimes, which come back as
timezone-aware UTC datetimes to the millisecond (a naive datetime is taken as UTC); collection names are
``[A-Za-z_][A-Za-z0-9_-]*``. A filter with any other operator is refused, naming it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Mapping, Protocol, Sequence

Document = dict[str, Any]
FILTER_OPERATORS = frozenset({"$in", "$gt", "$gte", "$lt", "$lte", "$ne"})
_COLLECTION = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,99}")
_SCALARS = (str, int, float, bool, type(None), datetime)


class DocumentStore(Protocol):
    def insert_many(self, collection: str, documents: Sequence[Document]) -> int:
        """Insert documents; those whose ``_id`` exists already are skipped (idempotent). Return how many new."""

    def upsert(self, collection: str, document: Document) -> None:
        """Insert, or replace the document with the same ``_id``."""

    def push(self, collection: str, document_id: str, field: str, item: Any, set_fields: Document | None = None) -> bool:
        """Append ``item`` to the array ``field`` of one document, and set ``set_fields``; False if it is absent."""

    def get(self, collection: str, document_id: str) -> Document | None:
        """The document with that ``_id``, or None."""

    def find(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] = (),
        limit: int = 0,
    ) -> list[Document]:
        """Documents matching the filter; ``limit=0`` means all."""

    def count(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        """How many documents match."""

    def delete_many(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        """Delete matching documents (all with no filter); return how many."""

    def collections(self) -> list[str]:
        """Names of the collections that exist, sorted (backups, resets)."""

    def drop_collection(self, collection: str) -> None:
        """Delete a collection and its documents (tests and resets); an absent one is not an error."""

    def close(self) -> None:
        """Release connections."""


def check_collection(name: str) -> str:
    if not isinstance(name, str) or not _COLLECTION.fullmatch(name):
        raise ValueError(f"collection name {name!r} is invalid: expected [A-Za-z_][A-Za-z0-9_-]*, at most 100 characters")
    return name


def check_document(document: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document, or ValueError naming the first field that breaks the rules."""
    document_id = document.get("_id")
    if not isinstance(document_id, str) or not document_id:
        raise ValueError(f"field '_id': expected a non-empty string, got {document_id!r}")
    _check_value("", document)
    return document


def _check_value(path: str, value: Any) -> None:
    if isinstance(value, Mapping):
        for name, item in value.items():
            if not isinstance(name, str) or name.startswith("$") or "." in name:
                raise ValueError(f"field {path + str(name)!r}: names may not start with '$' nor contain '.'")
            _check_value(f"{path}{name}.", item)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_value(f"{path}{index}.", item)
    elif not isinstance(value, _SCALARS):
        raise ValueError(f"field {path.rstrip('.')!r}: {type(value).__name__} is not a JSON value nor a datetime")


def check_filter(filter: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The filter, or ValueError naming the operator outside the supported subset."""
    for name, condition in (filter or {}).items():
        if name.startswith("$"):
            raise ValueError(f"filter operator {name!r} is not supported; use field conditions with {sorted(FILTER_OPERATORS)}")
        if is_operator_condition(condition):
            for operator in condition:
                if operator not in FILTER_OPERATORS:
                    raise ValueError(f"filter on {name!r}: operator {operator!r} is not supported; supported: {sorted(FILTER_OPERATORS)}")
            if "$in" in condition and not isinstance(condition["$in"], (list, tuple)):
                raise ValueError(f"filter on {name!r}: $in takes a list")
    return filter or {}


def is_operator_condition(condition: Any) -> bool:
    """Whether a filter condition is ``{"$op": value, ...}`` rather than a value to equal."""
    return isinstance(condition, Mapping) and bool(condition) and all(str(k).startswith("$") for k in condition)
