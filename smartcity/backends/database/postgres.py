"""The PostgreSQL store (``postgresql://user[:password]@host:port/db[?libpq-option=value]``), on psycopg 3.

Connections come from a psycopg_pool pool; each is in autocommit mode, and :meth:`PostgresDatabase.transaction`
pins one to the calling thread until the transaction ends (a nested one is a savepoint). :meth:`PostgresDatabase.query_async`
reads on a pool of the caller's event loop instead (:mod:`.postgres_async`). ``:name`` parameters are
translated to psycopg's ``%(name)s``, leaving ``::`` casts, literals, quoted names and comments alone. The password
is the URL's, or else the secret file ``postgres-password`` when there is one (none: passwordless auth).
"""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator, Mapping, Sequence
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from smartcity.backends._url import CONNECT_TIMEOUT_S, host_port, query_options, tls_ca_file, unreachable
from smartcity.backends.database.base import last_per_key, upsert_sql
from smartcity.backends.database.postgres_copy import column_types, copy_rows
from smartcity.backends.database.postgres_async import AsyncReads
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings, read_secret

POOL_MAX_SIZE = 8
PASSWORD_SECRET = "postgres-password"

_SQL_TOKENS = re.compile(
    r"""
      (?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'      # escape string literal E'...'
    | '(?:[^']|'')*'                          # string literal
    | "(?:[^"]|"")*"                          # quoted identifier
    | \$(?P<tag>(?:[A-Za-z_]\w*)?)\$.*?\$(?P=tag)\$   # dollar-quoted literal
    | --[^\n]*                                # line comment
    | /\*.*?\*/                               # block comment
    | ::                                      # cast
    | (?<![\w:]):(?P<name>[A-Za-z_]\w*)       # a :name parameter
    | %                                       # a percent sign, doubled for the driver
    """,
    re.VERBOSE | re.DOTALL,
)


@lru_cache(maxsize=1024)
def to_psycopg(sql: str) -> tuple[str, bool]:
    """``sql`` with ``:name`` as ``%(name)s`` (and ``%`` as ``%%``); and whether it has parameters at all."""
    found = False

    def replace(match: re.Match) -> str:
        nonlocal found
        if match.group("name"):
            found = True
            return f"%({match.group('name')})s"
        return match.group().replace("%", "%%")  # psycopg reads every % (in literals too) as a placeholder

    translated = _SQL_TOKENS.sub(replace, sql)
    return (translated, True) if found else (sql, False)


def conninfo_from_url(url: str, setting: str, settings: Settings | None = None) -> str:
    """The libpq connection string: the URL, a connect timeout, the secret password if the URL has none, and
    ``SMARTCITY_TLS_CA_FILE`` as the root certificate when ``?sslmode=verify-ca|verify-full`` names none."""
    host_port(url, setting, 5432)
    extra: dict[str, Any] = {"connect_timeout": max(1, int(CONNECT_TIMEOUT_S))}
    options = query_options(url)
    if options.get("sslmode", "").startswith("verify-") and "sslrootcert" not in options and (ca := tls_ca_file(settings)):
        extra["sslrootcert"] = ca
    if urlsplit(url).password is None:
        try:
            extra["password"] = read_secret(PASSWORD_SECRET, settings).get_secret_value()
        except ConfigurationError:
            pass  # no secret file: the server authenticates some other way (trust, peer, ~/.pgpass)
    return make_conninfo(url, **extra)


class PostgresDatabase:
    dialect = "postgresql"

    def __init__(self, conninfo: str, setting: str, where: str) -> None:
        try:
            psycopg.connect(conninfo).close()  # for the server's own words when it refuses us
        except psycopg.OperationalError as error:
            raise unreachable(setting, "PostgreSQL", where, error) from None
        self._pool = ConnectionPool(
            conninfo, min_size=1, max_size=POOL_MAX_SIZE, open=False,
            kwargs={"autocommit": True, "row_factory": dict_row},
        )
        self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        self._local = threading.local()
        self._async_reads = AsyncReads(conninfo)
        self.conninfo = conninfo  # for a second client on the same database (the schema migrator's SQLAlchemy)

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> PostgresDatabase:
        host, port = host_port(url, setting, 5432)
        return cls(conninfo_from_url(url, setting, settings), setting, f"{host}:{port}")

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        pinned = getattr(self._local, "connection", None)
        if pinned is not None:
            yield pinned
        else:
            with self._pool.connection() as connection:
                yield connection

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        query, has_params = to_psycopg(sql)
        with self._connection() as connection:
            cursor = connection.execute(query, params if has_params else None)
            return max(cursor.rowcount, 0)

    def executemany(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> int:
        query, _ = to_psycopg(sql)
        with self.transaction(), self._connection() as connection, connection.cursor() as cursor:
            cursor.executemany(query, rows)
            return max(cursor.rowcount, 0)

    def insert_new(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        # COPY cannot skip conflicts. Rows are nearly always new, so COPY straight into the table first; a batch
        # with a key already there (a redelivery) rolls back to its savepoint and goes through a session-local
        # staging table, whose new rows move over with INSERT ... SELECT ... ON CONFLICT DO NOTHING.
        names = ", ".join(columns)
        staging = f"_staging_{table}"
        with self.transaction(), self._connection() as connection:
            types = column_types(connection, table, columns)  # COPY in binary (postgres_copy): cheaper per row
            try:
                with connection.transaction():
                    copy_rows(connection, table, types, columns, rows)
                return len(rows)
            except psycopg.errors.UniqueViolation:
                pass
            connection.execute(f"CREATE TEMP TABLE IF NOT EXISTS {staging} "
                               f"(LIKE {table} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            copy_rows(connection, staging, types, columns, rows)
            cursor = connection.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM {staging} "
                                        "ON CONFLICT DO NOTHING")
            return max(cursor.rowcount, 0)

    def upsert(self, table: str, rows: Sequence[Mapping[str, Any]], key: Sequence[str]) -> int:
        # One row per key (the last: what executemany would leave), or the INSERT would meet a key twice and fail.
        # executemany sends a statement per row (pipelined); COPY sends the rows as one stream, about 3x faster.
        if not rows:
            return 0
        columns = list(rows[0])
        staging = f"_upsert_{table}"
        with self.transaction(), self._connection() as connection:
            connection.execute(f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS "
                               f"SELECT {', '.join(columns)} FROM {table} WITH NO DATA")
            with connection.cursor().copy(f"COPY {staging} FROM STDIN") as copy:
                for row in last_per_key(rows, key):
                    copy.write_row([row[column] for column in columns])
            cursor = connection.execute(to_psycopg(upsert_sql(table, columns, key, source=staging))[0])
            connection.execute(f"DROP TABLE {staging}")  # now, not at commit: a second upsert may come before it
            return max(cursor.rowcount, 0)

    def executescript(self, sql: str) -> None:
        with self.transaction(), self._connection() as connection:
            connection.execute(sql)  # no parameters: the simple protocol runs every statement

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        query, has_params = to_psycopg(sql)
        with self._connection() as connection:
            return connection.execute(query, params if has_params else None).fetchall()

    async def query_async(self, sql: str, params: Mapping[str, Any] | None = None,
                          binary: bool = False) -> list[dict[str, Any]]:
        query, has_params = to_psycopg(sql)
        return await self._async_reads.query(query, params if has_params else None, binary)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        pinned = getattr(self._local, "connection", None)
        if pinned is not None:
            with pinned.transaction():  # nested: a savepoint
                yield
            return
        with self._pool.connection() as connection, connection.transaction():
            self._local.connection = connection
            try:
                yield
            finally:
                self._local.connection = None

    def close(self) -> None:
        self._async_reads.close()
        self._pool.close()
