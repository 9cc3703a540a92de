"""Reads awaited on the caller's event loop, for :meth:`PostgresDatabase.query_async`.

A coroutine route that runs a query on psycopg's synchronous connection blocks its event loop for the round trip
(or pays a hop to a worker thread for each); here each event loop that reads (a server worker's, a test's) has
connections of its own, so one worker overlaps many queries, each on a connection of its own. The connections are
in autocommit mode and give dicts, as the synchronous pool's do. Statements are prepared on the server after a few
runs (psycopg's ``prepare_threshold``), as on the synchronous connections.

A loop's connections are a :class:`Lane`: at most ``max_size`` open, the idle ones reused newest first, one opened
when none is idle. That is all a read of a few hundred microseconds needs, and it costs a fifth of the CPU of
``psycopg_pool``'s ``AsyncConnectionPool`` per query (its checkout and return, ~20-25 us, were the most of the
read's client side after the round trip). A connection that failed, broke or was left inside a query (a read
cancelled by the request's time limit) is closed, not reused; a server out of reach fails the read at once with
psycopg's ``OperationalError`` (no pool to wait for), which the API answers with a 503.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Mapping

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

POOL_MAX_SIZE = 8  # per event loop: one server worker's queries in flight at once


class Lane:
    """One event loop's connections (see the module docstring)."""

    def __init__(self, conninfo: str, max_size: int) -> None:
        self.conninfo = conninfo
        self.idle: list[AsyncConnection] = []
        self.slots = asyncio.Semaphore(max_size)
        self.closed = False

    async def query(self, query: str, params: Mapping[str, Any] | None, binary: bool) -> list[dict[str, Any]]:
        async with self.slots:
            connection = self.idle.pop() if self.idle else await AsyncConnection.connect(
                self.conninfo, autocommit=True, row_factory=dict_row)
            try:
                cursor = await connection.execute(query, params, binary=binary)
                rows = await cursor.fetchall()
            except BaseException:
                self._give_back(connection)
                raise
            self._give_back(connection)
            return rows

    def _give_back(self, connection: AsyncConnection) -> None:
        """Keep ``connection`` for the next read when it is idle and sound, else close it."""
        if not self.closed and not connection.broken and connection.info.transaction_status == TransactionStatus.IDLE:
            self.idle.append(connection)
        else:
            connection.pgconn.finish()  # no round trip: the server sees the socket close

    def close(self) -> None:
        self.closed = True
        while self.idle:
            connection = self.idle.pop()  # held while it closes: deleted open, psycopg would warn
            connection.pgconn.finish()


class AsyncReads:
    """Read-only queries on a :class:`Lane` per event loop, made on the loop's first read, forgotten with it."""

    def __init__(self, conninfo: str, max_size: int = POOL_MAX_SIZE) -> None:
        self.conninfo = conninfo
        self.max_size = max_size
        self.lanes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Lane] = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    async def query(self, query: str, params: Mapping[str, Any] | None, binary: bool = False) -> list[dict[str, Any]]:
        """The rows of ``query`` (psycopg's ``%(name)s`` style) as dicts; ``binary``: sent in binary by the server."""
        loop = asyncio.get_running_loop()
        lane = self.lanes.get(loop)
        if lane is None:
            with self.lock:
                lane = self.lanes.get(loop)
                if lane is None:
                    lane = self.lanes[loop] = Lane(self.conninfo, self.max_size)
                    weakref.finalize(loop, lane.close)  # a loop gone (asyncio.run's, a test's): its connections too
        return await lane.query(query, params, binary)

    def close(self) -> None:
        """Close every loop's idle connections (those in use close as their reads end)."""
        with self.lock:
            lanes = list(self.lanes.values())
            self.lanes.clear()
        for lane in lanes:
            lane.close()
