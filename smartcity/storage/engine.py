"""A SQLAlchemy engine on the database a :class:`~smartcity.backends.database.Database` is open on.

The runtime writes and reads through the ``Database`` contract; Alembic and schema inspection need SQLAlchemy.
This engine opens its own connections to the same database (psycopg 3 with the backend's connection string, or the
SQLite file) and holds none between uses. On SQLite a transaction begins with ``BEGIN IMMEDIATE``: DDL then runs
inside it (Python's sqlite3 would commit around it), and two migrators of one file wait for each other.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from smartcity.backends.database import Database

SQLITE_BUSY_TIMEOUT_S = 30.0


def engine_for(db: Database) -> Engine:
    if db.dialect == "postgresql":
        import psycopg

        conninfo = db.conninfo  # type: ignore[attr-defined]
        return create_engine("postgresql+psycopg://", creator=lambda: psycopg.connect(conninfo), poolclass=NullPool)
    if db.dialect == "sqlite":
        engine = create_engine(
            f"sqlite:///{db.path}", poolclass=NullPool,  # type: ignore[attr-defined]
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S},
        )
        event.listen(engine, "connect", _sqlite_without_implicit_transactions)
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    raise ValueError(f"no SQLAlchemy engine for the dialect {db.dialect!r}")


def _sqlite_without_implicit_transactions(dbapi_connection, connection_record) -> None:
    dbapi_connection.isolation_level = None


@contextmanager
def connection_to(db: Database, transaction: bool = True) -> Iterator[Connection]:
    """A SQLAlchemy connection to ``db``'s database, in a transaction committed at the end unless it fails."""
    engine = engine_for(db)
    try:
        with engine.begin() if transaction else engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()
