"""Time ranges and buckets for the API's history, delay and KPI queries, in both SQL dialects.

A range is ``from`` (inclusive) to ``to`` (exclusive), both ISO 8601 with a timezone; a bucket is one of
:class:`Bucket`. Buckets are aligned on the Unix epoch (a ``1h`` bucket starts on the hour, UTC), and
:func:`bucket_sql` gives the SQL expression of a row's bucket start in seconds since the epoch, for PostgreSQL
(``timestamptz`` columns) and SQLite (UTC ISO 8601 text columns).

:func:`time_range` is a coroutine although it waits for nothing: FastAPI runs a plain function dependency in a
worker thread, and that hop costs more than the rest of the dependency.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Annotated

from fastapi import Query
from pydantic import AwareDatetime

from smartcity.api.problems import bad_request
from smartcity.events.common import city

MAX_RANGE = timedelta(days=366)


class Bucket(str, Enum):
    """Bucket sizes of history queries."""

    minute = "1m"
    five_minutes = "5m"
    fifteen_minutes = "15m"
    hour = "1h"
    day = "1d"

    @property
    def seconds(self) -> int:
        return {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "1d": 86400}[self.value]


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime
    # What the query named, None where it took the default: a paged listing's cursor is tied to these, not to the
    # defaults, which move with the clock from one page to the next.
    asked_start: datetime | None = None
    asked_end: datetime | None = None

    @property
    def cursor_filters(self) -> dict[str, datetime | None]:
        """The range as a paged listing's filters: following ``next_cursor`` with the same query continues the
        listing even when ``from`` or ``to`` was left to its default (relative to now)."""
        return {"from": self.asked_start, "to": self.asked_end}

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


async def time_range(
    start: Annotated[AwareDatetime | None, Query(alias="from", description="Start (inclusive), ISO 8601 with a timezone; default: `to` minus 1 hour.")] = None,
    end: Annotated[AwareDatetime | None, Query(alias="to", description="End (exclusive), ISO 8601 with a timezone; default: now.")] = None,
) -> TimeRange:
    """The query's ``from``/``to`` (a FastAPI dependency); 400 when ``from`` is not before ``to`` or the span is too long."""
    asked_start, asked_end = start, end
    end = (end or datetime.now(timezone.utc)).astimezone(timezone.utc)
    start = (start or end - timedelta(hours=1)).astimezone(timezone.utc)
    if start >= end:
        raise bad_request("query.from", "must be before `to`")
    if end - start > MAX_RANGE:
        raise bad_request("query.from", f"the range may span at most {MAX_RANGE.days} days")
    return TimeRange(start, end, asked_start, asked_end)


def sql_time(moment: datetime) -> datetime:
    """A moment as a query parameter: in UTC. SQLite compares timestamps as text, and its backend writes a datetime
    parameter as the stream writers store theirs (``isoformat()`` in UTC), so equal moments are equal texts and
    the texts sort in time order; PostgreSQL compares ``timestamptz`` values."""
    return moment.astimezone(timezone.utc)


def epoch_sql(dialect: str, column: str) -> str:
    """SQL for a timestamp column's seconds since the epoch (an integer)."""
    if dialect == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS bigint)"
    if sqlite3.sqlite_version_info >= (3, 38):  # unixepoch() is a third faster than strftime('%s')
        return f"unixepoch({column})"
    return f"CAST(strftime('%s', {column}) AS INTEGER)"


def bucket_sql(dialect: str, column: str, bucket_s: int) -> str:
    """SQL for the start (seconds since the epoch) of the ``bucket_s``-second bucket a timestamp falls in."""
    return f"(({epoch_sql(dialect, column)} / {int(bucket_s)}) * {int(bucket_s)})"


def from_epoch(seconds: int | float) -> datetime:
    return datetime.fromtimestamp(int(seconds), timezone.utc)


def stored_time(value: str | datetime) -> datetime:
    """A timestamp as a database returns it (ISO 8601 text from SQLite, a datetime from PostgreSQL), in UTC."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def city_time(value: str | datetime) -> datetime:
    """A stored moment in the configured city's local time (its UTC offset), as the API answers observations."""
    return stored_time(value).astimezone(city().zoneinfo)


def cursor_time(value: str) -> datetime:
    """A moment a cursor holds (ISO 8601); a 400 naming ``query.cursor`` when it is not one."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request("query.cursor", "not a cursor this API issued") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
