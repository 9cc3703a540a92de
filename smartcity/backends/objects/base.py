"""The object store contract: a bucket of immutable blobs under ``/``-separated keys (S3 semantics).

Keys are at most 1024 bytes of UTF-8, made of non-empty ``/``-separated parts; no part starts with ``.`` (which
also rules out ``.`` and ``..``) and no key contains a backslash or NUL. Both backends refuse any other key with
ValueError, so keys that work on the local folder work on S3 and cannot escape the folder.
"""

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


def check_key(key: str) -> str:
    """The key, or ValueError saying which rule it breaks."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"object key {key!r} is invalid: expected a non-empty string")
    if len(key.encode("utf-8")) > 1024:
        raise ValueError(f"object key {key[:40]!r}... is invalid: longer than 1024 bytes")
    if "\\" in key or "\x00" in key:
        raise ValueError(f"object key {key!r} is invalid: it contains a backslash or NUL")
    for part in key.split("/"):
        if not part or part.startswith("."):
            raise ValueError(f"object key {key!r} is invalid: empty parts and parts starting with '.' are not allowed")
    return key
