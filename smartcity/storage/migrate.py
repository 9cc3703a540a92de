"""Versioned schema migrations: numbered SQL files applied in order, each once, each in its own transaction.

The convention, for every engineer adding tables:

- A migration is a file in ``smartcity/storage/migrations/`` named ``NNNN_<name>.sql``: a four-digit version, an
  underscore, a lower-case name. Versions are applied in increasing order. Ranges: ``0001``-``0099`` storage
  (stream tables, reference tables), ``0100``-``0199`` streaming aggregates, ``0200``-``0299`` the API,
  ``0300``-``0399`` the models (forecasts, anomaly scores).
- A version may have dialect variants ``NNNN_<name>.postgresql.sql`` and ``NNNN_<name>.sqlite.sql``; the variant
  of the database's dialect wins over a plain ``NNNN_<name>.sql``, which serves both. A version with a variant for
  one dialect only (and no plain file) does not apply to the other.
- A file holds any number of statements separated by ``;``, run as a script (no parameters).
- Applied versions are recorded in ``schema_migrations`` (version, name, checksum of the file, time). Running the
  migrations again applies nothing new. A file changed after it was applied is an error naming it: add a new
  version instead of editing an applied one.
- Each file runs in one transaction: it applies whole or not at all. On PostgreSQL a transaction-scoped advisory
  lock serialises concurrent migrators; the version is checked again under the lock.

After the files, :func:`migrate` creates the daily partitions of the stream tables ahead of time
(:func:`smartcity.storage.partitions.ensure_partitions`).

Command line: ``smartcity db migrate`` and ``smartcity db status``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from smartcity.backends.database import Database
from smartcity.storage.partitions import ensure_partitions

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DIALECTS = ("postgresql", "sqlite")
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<dialect>postgresql|sqlite))?\.sql$")
# Any constant will do; it only has to be the same for every migrator of this schema.
_ADVISORY_LOCK_KEY = 7_305_112_001

_CREATE_LEDGER = {
    "postgresql": """CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""",
    "sqlite": """CREATE TABLE IF NOT EXISTS schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
        applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)""",
}


class MigrationError(Exception):
    """A migration file is misnamed, duplicated, changed after it was applied, or failed; names the file."""


@dataclass(frozen=True)
class Migration:
    """One version as it applies to one dialect: the file chosen for it and that file's checksum."""

    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    migration: Migration
    applied_at: str | None
    changed: bool


def discover(dialect: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations that apply to ``dialect``, in version order."""
    if dialect not in DIALECTS:
        raise MigrationError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    files: dict[int, dict[str | None, Path]] = {}
    names: dict[int, str] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: a migration file is named NNNN_<name>[.postgresql|.sqlite].sql")
        version, name = int(match["version"]), match["name"]
        if names.setdefault(version, name) != name:
            raise MigrationError(f"{path}: version {version:04d} is also named {names[version]!r}")
        files.setdefault(version, {})[match["dialect"]] = path
    chosen = []
    for version in sorted(files):
        path = files[version].get(dialect) or files[version].get(None)
        if path is not None:
            chosen.append(Migration(version, names[version], path))
    return chosen


def applied_versions(db: Database) -> dict[int, dict]:
    """Rows of ``schema_migrations`` keyed by version (the ledger is created if missing)."""
    db.execute(_CREATE_LEDGER[db.dialect])
    rows = db.query("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
    return {int(row["version"]): row for row in rows}


def status(db: Database, directory: Path = MIGRATIONS_DIR) -> list[MigrationStatus]:
    """Every migration of the database's dialect: applied when, and whether its file changed since."""
    applied = applied_versions(db)
    result = []
    for migration in discover(db.dialect, directory):
        row = applied.get(migration.version)
        result.append(
            MigrationStatus(
                migration,
                applied_at=str(row["applied_at"]) if row else None,
                changed=bool(row) and row["checksum"] != migration.checksum,
            )
        )
    return result


def migrate(
    db: Database,
    directory: Path = MIGRATIONS_DIR,
    on_apply: Callable[[Migration], None] = lambda migration: None,
    partitions_days_ahead: int | None = None,
) -> list[Migration]:
    """Apply the pending migrations in order; return those applied (none when already up to date).

    ``on_apply`` is called before each file runs (for progress display). Afterwards the stream tables' daily
    partitions are created up to ``partitions_days_ahead`` days ahead (the setting's value when None).
    """
    done = []
    for item in status(db, directory):
        if item.changed:
            raise MigrationError(
                f"{item.migration.path.name}: changed after it was applied; add a new version instead"
            )
        if item.applied_at is None and _apply(db, item.migration, on_apply):
            done.append(item.migration)
    ensure_partitions(db, days_ahead=partitions_days_ahead)
    return done


def _apply(db: Database, migration: Migration, on_apply: Callable[[Migration], None]) -> bool:
    """Run one file in one transaction; False when another migrator applied it meanwhile."""
    with db.transaction():
        if db.dialect == "postgresql":
            db.execute("SELECT pg_advisory_xact_lock(:key)", {"key": _ADVISORY_LOCK_KEY})
        already = db.query("SELECT 1 AS found FROM schema_migrations WHERE version = :v", {"v": migration.version})
        if already:
            return False
        on_apply(migration)
        try:
            db.executescript(migration.sql)
        except Exception as error:
            raise MigrationError(f"{migration.path.name}: {error}") from error
        db.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (:version, :name, :checksum)",
            {"version": migration.version, "name": migration.name, "checksum": migration.checksum},
        )
    return True
