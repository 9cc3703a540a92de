"""Daily partitions of the time-series tables (PostgreSQL), created ahead of time and on demand.

Every table of the current schema that is range-partitioned on one ``timestamptz`` column gets one partition per
UTC day, named ``<table>_pYYYYMMDD``. :func:`ensure_partitions` (run by ``smartcity db migrate``) creates them
from yesterday to ``partitions_days_ahead`` days ahead; :class:`PartitionKeeper` (used by the writers) creates
the day of each incoming row when it is missing, so late or replayed events always find their partition.
Creation takes a transaction-scoped advisory lock on the partition's name and uses ``IF NOT EXISTS``, so
concurrent writers are safe. On SQLite, which has no partitioning, all of this does nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone

from smartcity.backends.database import Database
from smartcity.settings import get_settings

_PARTITIONED_TABLES = """
SELECT c.relname AS table_name
FROM pg_partitioned_table p
JOIN pg_class c ON c.oid = p.partrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
WHERE p.partstrat = 'r' AND p.partnatts = 1 AND n.nspname = current_schema()
  AND a.atttypid = CAST('timestamptz' AS regtype)
ORDER BY 1
"""

_PARTITIONS = """
SELECT parent.relname AS table_name, child.relname AS partition_name
FROM pg_inherits i
JOIN pg_class parent ON parent.oid = i.inhparent
JOIN pg_class child ON child.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = parent.relnamespace
WHERE n.nspname = current_schema()
"""


def partition_name(table: str, day: date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def utc_day(moment: datetime) -> date:
    return moment.astimezone(timezone.utc).date()


def partitioned_tables(db: Database) -> list[str]:
    if db.dialect != "postgresql":
        return []
    return [row["table_name"] for row in db.query(_PARTITIONED_TABLES)]


def existing_partitions(db: Database) -> set[str]:
    if db.dialect != "postgresql":
        return set()
    return {row["partition_name"] for row in db.query(_PARTITIONS)}


def create_partition(db: Database, table: str, day: date) -> None:
    """Create ``table``'s partition for the UTC ``day`` unless it exists (safe against concurrent creators)."""
    name = partition_name(table, day)
    lower, upper = f"{day:%Y-%m-%d} UTC", f"{day + timedelta(days=1):%Y-%m-%d} UTC"
    with db.transaction():
        db.execute("SELECT pg_advisory_xact_lock(hashtext(:name))", {"name": name})
        db.execute(
            f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{table}" FOR VALUES FROM (\'{lower}\') TO (\'{upper}\')'
        )


def ensure_partitions(
    db: Database, days_ahead: int | None = None, days_back: int = 1, today: date | None = None
) -> list[str]:
    """Create the missing daily partitions of every partitioned table around today; return the names created."""
    if db.dialect != "postgresql":
        return []
    days_ahead = get_settings().partitions_days_ahead if days_ahead is None else days_ahead
    today = today or utc_day(datetime.now(timezone.utc))
    days = [today + timedelta(days=offset) for offset in range(-days_back, days_ahead + 1)]
    existing = existing_partitions(db)
    created = []
    for table in partitioned_tables(db):
        for day in days:
            if partition_name(table, day) not in existing:
                create_partition(db, table, day)
                created.append(partition_name(table, day))
    return created


class PartitionKeeper:
    """Makes sure the partitions that a batch of rows needs exist, remembering those it has seen."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: set[str] | None = None

    def ensure(self, table: str, moments: Iterable[datetime]) -> None:
        if self.db.dialect != "postgresql":
            return
        if self._known is None:
            self._known = existing_partitions(self.db)
        for day in sorted({utc_day(moment) for moment in moments}):
            name = partition_name(table, day)
            if name not in self._known:
                create_partition(self.db, table, day)
                self._known.add(name)
