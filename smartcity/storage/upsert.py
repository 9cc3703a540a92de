"""Idempotent writes of keyed rows: ``INSERT ... ON CONFLICT (key) DO UPDATE``, the same SQL on both dialects.

Used wherever a row is identified by what it describes (a window, a forecast) and may be written again: the
streaming jobs' replayed micro-batches, the history generator, the forecasting function's redelivered events.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from smartcity.backends.database import Database
from smartcity.backends.database.base import upsert_sql

__all__ = ["upsert", "upsert_sql"]


def upsert(db: Database, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> int:
    """Insert or replace ``rows`` of ``table`` by ``key``, in one transaction (see :meth:`Database.upsert`)."""
    return db.upsert(table, rows, key)
