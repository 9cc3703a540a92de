"""The embedded relational store (``sqlite:///path/to/file.db``): SQLite in WAL mode, one connection per thread.

``:name`` parameters are SQLite's own. Datetimes are stored as ISO 8601 text (they compare in time order when
they share a timezone). Several processes may use the same file: writers wait for each other (busy timeout), and
a transaction takes the write lock when it begins, so two read-then-write transactions cannot deadlock.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from smartcity.backends._url import local_path
from smartcity.backends.database.base import last_per_key, upsert_sql
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings

BUSY_TIMEOUT_S = 30.0

sqlite3.register_adapter(datetime, datetime.isoformat)
sqlite3.register_adapter(date, date.isoformat)


class SqliteDatabase:
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self.connection()  # fail now, not at the first statement, when the file cannot be opened

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> SqliteDatabase:
        path = local_path(url, setting)
        try:
            return cls(path)
        except (OSError, sqlite3.Error) as error:
            raise ConfigurationError(setting, f"cannot open the SQLite file {path}: {error}") from None

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (in autocommit mode: transactions are begun explicitly)."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA foreign_keys=ON")
            self._local.connection, self._local.depth = connection, 0
            with self._connections_lock:
                self._connections.append(connection)
        return connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return max(self.connection().execute(sql, params or {}).rowcount, 0)

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        with self.transaction():
            return max(self.connection().executemany(sql, rows).rowcount, 0)

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING"
        with self.transaction():
            return max(self.connection().executemany(sql, rows).rowcount, 0)

    def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> int:
        return self.executemany(upsert_sql(table, list(rows[0]), key), last_per_key(rows, key)) if rows else 0

    def executescript(self, sql: str) -> None:
        # sqlite3's own executescript() commits first and cannot run inside our transaction: split instead.
        with self.transaction():
            for statement in _statements(sql):
                self.connection().execute(statement)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.connection().execute(sql, params or {})
        columns = [column[0] for column in cursor.description or ()]
        return [dict(zip(columns, row)) for row in cursor]

    async def query_async(self, sql: str, params: Mapping[str, Any] | None = None,
                          binary: bool = False) -> list[dict[str, Any]]:
        return self.query(sql, params)  # the embedded database does not wait on a network: a short read runs inline

    @contextmanager
    def transaction(self) -> Iterator[None]:
        connection = self.connection()
        depth = self._local.depth
        savepoint = f"level_{depth}"
        connection.execute(f"SAVEPOINT {savepoint}" if depth else "BEGIN IMMEDIATE")
        self._local.depth = depth + 1
        try:
            yield
        except BaseException:
            if depth:
                connection.execute(f"ROLLBACK TO {savepoint}")
                connection.execute(f"RELEASE {savepoint}")
            else:
                connection.execute("ROLLBACK")
            raise
        else:
            connection.execute(f"RELEASE {savepoint}" if depth else "COMMIT")
        finally:
            self._local.depth = depth

    def close(self) -> None:
        with self._connections_lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()
        self._local = threading.local()


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, in order: SQLite itself tells which ``;`` ends one (not those in literals)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
