"""Idempotent writes of keyed rows: ``INSERT ... ON CONFLICT (key) DO UPDATE``, the same SQL on both dialects.

Used wherever a row is identified by what it describes (a window, a forecast) and may be written again: the
streaming jobs' replayed micro-batches, the history generator, the forecasting function's redelivered events.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from smartcity.backends.database import Database


def upsert_sql(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """``INSERT ... ON CONFLICT (key) DO UPDATE``: the same SQL for PostgreSQL and SQLite."""
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(':' + column for column in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def upsert(db: Database, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> int:
    """Insert or replace ``rows`` of ``table`` by ``key``, in one transaction."""
    if not rows:
        return 0
    return db.executemany(upsert_sql(table, list(rows[0]), key), rows)
