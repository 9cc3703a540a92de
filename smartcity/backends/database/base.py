"""The relational (and time-series) store contract: SQL with named parameters, transactions.

SQL is written with ``:name`` parameters; each backend translates to its driver's style. Where dialects differ
(partitioning, upsert syntax), callers branch on :attr:`Database.dialect`, which is ``"postgresql"`` or
``"sqlite"``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Mapping, Protocol, Sequence


class Database(Protocol):
    dialect: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run one statement in its own transaction (or the open one); return the rows it changed."""

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run one statement for every row, in one transaction; return the rows changed in all."""

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        """Insert the rows (values in ``columns`` order), skipping any whose key is already there (or twice among
        them), in one transaction; return how many were new. PostgreSQL does it with ``COPY``."""

    def executescript(self, sql: str) -> None:
        """Run several ``;``-separated statements with no parameters (a schema file), in one transaction."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts keyed by column name."""

    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside commit together, or roll back together on an exception."""

    def close(self) -> None:
        """Release connections."""
