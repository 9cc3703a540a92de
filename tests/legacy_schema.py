"""A database as the old SQL migrator left it: its SQL files (the last the product shipped, 0001-0310) applied in
order, the dialect's variant winning over a plain file, each recorded in ``schema_migrations`` as that migrator
recorded it. For the tests that such a database is taken over by the Alembic schema as it is.

The files are kept, byte for byte, in ``fixtures/legacy_sql_migrations.tar.gz`` (readable in git at commit f53bf01,
``smartcity/storage/migrations/``): a frozen record of what old installs ran, not code anyone edits, archived so
that the tree's duplicate scan does not count again the repetition that ``schema.py`` removed from the product.
"""

from __future__ import annotations

import hashlib
import re
import tarfile
from functools import cache
from pathlib import Path

from smartcity.backends.database import Database

LEGACY_SQL = Path(__file__).resolve().parent / "fixtures" / "legacy_sql_migrations.tar.gz"
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)(?:\.(?P<dialect>postgresql|sqlite))?\.sql$")
_LEDGER = {
    "postgresql": """CREATE TABLE schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now())""",
    "sqlite": """CREATE TABLE schema_migrations (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL,
        applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)""",
}


@cache
def legacy_sql() -> dict[str, bytes]:
    """The old migration files by name."""
    with tarfile.open(LEGACY_SQL) as archive:
        return {member.name: archive.extractfile(member).read() for member in archive.getmembers()}


def legacy_files(dialect: str, up_to: int = 9999) -> list[tuple[int, str, bytes]]:
    """(version, name, SQL) of every old migration that applied to ``dialect``, up to version ``up_to``."""
    chosen: dict[int, tuple[str, bytes]] = {}
    for file_name, sql in sorted(legacy_sql().items()):
        match = _FILE_NAME.match(file_name)
        version = int(match["version"])
        if version <= up_to and match["dialect"] in (None, dialect):
            if match["dialect"] == dialect or version not in chosen:
                chosen[version] = (match["name"], sql)
    return [(version, name, sql) for version, (name, sql) in sorted(chosen.items())]


def migrate_the_old_way(db: Database, up_to: int = 9999) -> list[int]:
    """Apply the old SQL files to ``db`` and record them; return the versions applied."""
    db.execute(_LEDGER[db.dialect])
    applied = []
    for version, name, sql in legacy_files(db.dialect, up_to):
        with db.transaction():
            db.executescript(sql.decode("utf-8"))
            db.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (:version, :name, :checksum)",
                {"version": version, "name": name, "checksum": hashlib.sha256(sql).hexdigest()},
            )
        applied.append(version)
    return applied
