"""Schema migrations: the tables of :mod:`smartcity.storage.schema`, versioned by Alembic revisions.

How a database is brought to the head revision, in one transaction (on PostgreSQL under a transaction-scoped
advisory lock, so that concurrent migrators wait for each other and the second finds nothing to do):

- **empty**: every table is created from ``schema.py`` for the database's dialect, and the head revision is
  stamped (Alembic's recipe for building a database from scratch);
- **migrated by the old SQL files** (``schema_migrations`` at version 0310, the last of them): the schema is
  already that of the baseline revision 0001, which is stamped; the data stays as it is; the old ledger is kept;
- **under Alembic**: the pending revisions run in order (``alembic/versions/``, one file per revision).

Then the table of a stream registered since (a new descriptor, :mod:`smartcity.streams`) is created if absent,
so adding a stream needs no revision; changing an existing stream's model still does.

A failure anywhere rolls the whole upgrade back and raises :class:`MigrationError`. After it, :func:`migrate`
creates the daily partitions of the stream tables ahead of time (:func:`smartcity.storage.partitions.ensure_partitions`).

Command line: ``smartcity db migrate`` and ``smartcity db status`` (which also lists any difference between the
database and ``schema.py``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

from smartcity.backends.database import Database
from smartcity.storage.engine import connection_to
from smartcity.storage.partitions import ensure_partitions
from smartcity.storage.schema import metadata_for
from smartcity.storage.tables import STREAM_TABLES

ALEMBIC_DIR = Path(__file__).resolve().parent / "alembic"
VERSIONS_DIR = ALEMBIC_DIR / "versions"
BASELINE = "0001"
LEGACY_LEDGER = "schema_migrations"  # the old SQL migrator's table: version, name, checksum, applied_at
LEGACY_LAST_VERSION = 310  # 0310_anomaly_scores.sql: the schema of revision 0001
_PARTITION = re.compile(r"^(?P<table>\w+)_p\d{8}$")
# Any constant will do; it only has to be the same for every migrator of this schema.
_ADVISORY_LOCK_KEY = 7_305_112_001


class MigrationError(Exception):
    """The database cannot be brought to the head revision (or a revision failed); says why."""


@dataclass(frozen=True)
class Revision:
    id: str
    description: str

    @property
    def name(self) -> str:
        return f"{self.id} {self.description}"


@dataclass(frozen=True)
class RevisionStatus:
    revision: Revision
    applied: bool


def include_name(name: str | None, type_: str, parent_names: dict) -> bool:
    """What schema comparison looks at: not the daily partitions, not the old SQL migrator's ledger."""
    if type_ != "table" or name is None:
        return True
    partition = _PARTITION.match(name)
    return name != LEGACY_LEDGER and not (partition and partition["table"] in metadata_for("postgresql").tables)


def alembic_config(connection: Connection | None = None, versions: Sequence[Path] = ()) -> Config:
    """The Alembic configuration, built in code: the package's environment, its revisions and any ``versions``."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(p) for p in (VERSIONS_DIR, *versions)))
    config.attributes["connection"] = connection
    return config


def revisions(config: Config) -> list[Revision]:
    """Every revision, oldest first."""
    scripts = ScriptDirectory.from_config(config).walk_revisions()
    return [Revision(script.revision, script.doc.splitlines()[0].rstrip(".:")) for script in reversed(list(scripts))]


def migrate(
    db: Database,
    on_apply: Callable[[Revision], None] = lambda revision: None,
    partitions_days_ahead: int | None = None,
    versions: Sequence[Path] = (),
) -> list[Revision]:
    """Bring the database to the head revision; return the revisions it gained (none when already there).

    ``on_apply`` is called with each revision before it is applied (for progress display); ``versions`` are more
    folders of revisions (tests). Afterwards the stream tables' daily partitions are created up to
    ``partitions_days_ahead`` days ahead (the setting's value when None).
    """
    try:
        with connection_to(db) as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY})
            config = alembic_config(connection, versions)
            applied = _adopt(connection, config, on_apply) if not _current(connection) else []
            pending = _pending(connection, config)
            for revision in pending:
                on_apply(revision)
            command.upgrade(config, "head")
            added = _add_stream_tables(connection)
    except MigrationError:
        raise
    except Exception as error:
        raise MigrationError(f"the upgrade failed and was rolled back: {error}") from error
    ensure_partitions(db, days_ahead=partitions_days_ahead)
    return applied + pending + added


def _add_stream_tables(connection: Connection) -> list[Revision]:
    """Create the table of each stream registered since the database was built (a new descriptor: see
    :mod:`smartcity.streams`), as ``schema.py`` has it; an existing table is never altered here."""
    metadata = metadata_for(connection.dialect.name)
    present = set(inspect(connection).get_table_names())
    missing = [metadata.tables[table.table] for table in STREAM_TABLES.values() if table.table not in present]
    metadata.create_all(connection, tables=missing)
    return [Revision("stream", f"table {table.name}") for table in missing]


def _current(connection: Connection) -> tuple[str, ...]:
    return tuple(MigrationContext.configure(connection).get_current_heads())


def _pending(connection: Connection, config: Config) -> list[Revision]:
    current = set(_current(connection))
    everything = revisions(config)
    if not current:
        return everything
    done = {script.revision for head in current
            for script in ScriptDirectory.from_config(config).iterate_revisions(head, "base")}
    return [revision for revision in everything if revision.id not in done]


def _adopt(connection: Connection, config: Config, on_apply: Callable[[Revision], None]) -> list[Revision]:
    """Give Alembic a database it has no record of: build it when empty, stamp it when the old SQL files made it."""
    tables = set(inspect(connection).get_table_names())
    if LEGACY_LEDGER in tables:
        version = connection.execute(text(f"SELECT max(version) FROM {LEGACY_LEDGER}")).scalar()
        if version != LEGACY_LAST_VERSION:
            raise MigrationError(
                f"the database was migrated by the old SQL files up to version {version or 0:04d}; only a database "
                f"at their last version, {LEGACY_LAST_VERSION:04d}, can be taken over: migrate it with the release "
                "before the Alembic schema first, or restore it into an empty database"
            )
        command.stamp(config, BASELINE)
        return []
    metadata = metadata_for(connection.dialect.name)
    ours = sorted(tables & set(metadata.tables))
    if ours:
        raise MigrationError(
            f"the database holds tables of the schema ({', '.join(ours[:5])}) but no record of its migrations "
            "(no alembic_version, no schema_migrations): refusing to guess its revision"
        )
    built = revisions(config)
    for revision in built:
        on_apply(revision)
    metadata.create_all(connection)
    command.stamp(config, "head")
    return built


def status(db: Database, versions: Sequence[Path] = ()) -> list[RevisionStatus]:
    """Every revision, oldest first, and whether the database has it."""
    with connection_to(db, transaction=False) as connection:
        config = alembic_config(connection, versions)
        pending = {revision.id for revision in _pending(connection, config)}
        return [RevisionStatus(revision, revision.id not in pending) for revision in revisions(config)]


def schema_differences(db: Database) -> list:
    """What differs between the database and ``schema.py`` (Alembic's comparison; empty when they match).

    Column types are compared on PostgreSQL; SQLite's declared types only choose an affinity (the old SQL files
    declared ``timestamptz`` and ``boolean`` there too, which hold the same ISO text and 0/1). Two spellings that SQLite alone allows do not count: a ``TEXT PRIMARY KEY`` declared without ``NOT NULL`` (as
    the old SQL files did; ``schema.py`` adds it), and a foreign key without a name (SQLite does not use it).
    """
    with connection_to(db, transaction=False) as connection:
        context = MigrationContext.configure(
            connection, opts={"include_name": include_name, "compare_type": db.dialect == "postgresql"}
        )
        metadata = metadata_for(connection.dialect.name)
        differences = compare_metadata(context, metadata)
    if db.dialect != "sqlite":
        return differences
    return [d for d in map(_without_primary_key_nullability, differences) if d and not _unnamed_fk_only(d, differences)]


def _without_primary_key_nullability(difference):
    if not isinstance(difference, list):
        return difference
    return [change for change in difference if not (
        change[0] == "modify_nullable" and metadata_for("sqlite").tables[change[2]].c[change[3]].primary_key)]


def _fk_shape(fk) -> tuple:
    return fk.parent.name, tuple(fk.column_keys), fk.referred_table.name


def _unnamed_fk_only(difference, differences: list) -> bool:
    """A foreign key that differs from its other side (removed / added) by its name only."""
    if not isinstance(difference, tuple) or difference[0] not in ("add_fk", "remove_fk"):
        return False
    other = "remove_fk" if difference[0] == "add_fk" else "add_fk"
    return any(d[0] == other and _fk_shape(d[1]) == _fk_shape(difference[1]) and None in (d[1].name, difference[1].name)
               for d in differences if isinstance(d, tuple))
