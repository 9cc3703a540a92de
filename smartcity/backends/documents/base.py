"""The document store contract: collections of JSON documents keyed by ``_id``.

Filters are the MongoDB subset the platform uses: equality on (dotted) fields, and the operators ``$in``,
``$gt``, ``$gte``, ``$lt``, ``$lte``, ``$ne``. Sorting is by one or more (field, 1 | -1) pairs.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

Document = dict[str, Any]


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

    def close(self) -> None:
        """Release connections."""
