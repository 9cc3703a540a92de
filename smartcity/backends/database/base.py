"""The relational (and time-series) store contract: SQL with named parameters, transactions.

SQL is written with ``:name`` parameters; each backend translates to its driver's style. Where dialects differ
(partitioning, upsert syntax), callers branch on :attr:`Database.dialect`, which is ``"postgresql"`` or
``"sqlite"``.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Mapping, Protocol, Sequence


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], source: str | None = None) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` (the same SQL for PostgreSQL and SQLite) of one row of ``:column``
    parameters, or of every row of the table ``source``."""
    names = ", ".join(columns)
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in key)
    values = f"VALUES ({', '.join(':' + column for column in columns)})" if source is None else (
        f"SELECT {names} FROM {source} WHERE true")  # WHERE: SQLite's parser needs it before ON CONFLICT
    return f"INSERT INTO {table} ({names}) {values} ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"


def last_per_key(rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> list[Mapping[str, Any]]:
    """The last of ``rows`` with each ``key``, in the order of their keys' first rows."""
    return list({tuple(row[column] for column in key): row for row in rows}.values())


class Database(Protocol):
    dialect: str

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run one statement in its own transaction (or the open one); return the rows it changed."""

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run one statement for every row, in one transaction; return the rows changed in all."""

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        """Insert the rows (values in ``columns`` order), skipping any whose key is already there (or twice among
        them), in one transaction; return how many were new. PostgreSQL does it with ``COPY``."""

    def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> int:
        """Insert ``rows`` (dicts with the same columns) or, where a row with the same ``key`` is there, replace its
        other columns, in one transaction; a key twice among ``rows``: the last one wins. Return how many keys were written.
        PostgreSQL copies them into a staging table first (``COPY``), then upserts them with one statement."""

    def executescript(self, sql: str) -> None:
        """Run several ``;``-separated statements with no parameters (a schema file), in one transaction."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a SELECT as dicts keyed by column name."""

    async def query_async(self, sql: str, params: Mapping[str, Any] | None = None,
                          binary: bool = False) -> list[dict[str, Any]]:
        """Rows of a SELECT, awaited without blocking the event loop on the network (PostgreSQL: a connection of
        the calling loop's own pool, outside any transaction of the thread). SQLite runs it inline: callers of a
        long SQLite read use a worker thread instead (:func:`smartcity.api.app.database_query`). ``binary``:
        PostgreSQL sends the values in binary, a third cheaper to load, as the same Python values where the
        driver knows the column's type (numbers, text, timestamps); others would come as bytes."""

    def transaction(self) -> AbstractContextManager[None]:
        """Statements inside commit together, or roll back together on an exception."""

    def close(self) -> None:
        """Release connections."""
