"""The object store contract: a bucket of immutable blobs under ``/``-separated keys (S3 semantics)."""

from __future__ import annotations

from typing import Protocol


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Store (or replace) the object."""

    def get(self, key: str) -> bytes:
        """The object's bytes; KeyError when it does not exist."""

    def exists(self, key: str) -> bool:
        """Whether the object exists."""

    def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""

    def delete(self, key: str) -> None:
        """Delete the object; deleting an absent one is not an error."""

    def close(self) -> None:
        """Release connections."""
