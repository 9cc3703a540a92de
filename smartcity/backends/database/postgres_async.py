"""Reads awaited on the caller's event loop, for :meth:`PostgresDatabase.query_async`.

A coroutine route that runs a query on psycopg's synchronous connection blocks its event loop for the round trip
(or pays a hop to a worker thread for each); here each event loop that reads (a server worker's, a test's) has its
own psycopg ``AsyncConnectionPool``, so one worker overlaps many queries, each on a connection of its own. The
connections are in autocommit mode and give dicts, as the synchronous pool's do. Statements are prepared on the
server after a few runs (psycopg's ``prepare_threshold``), as on the synchronous connections.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Mapping

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from smartcity.backends._url import CONNECT_TIMEOUT_S

POOL_MAX_SIZE = 8  # per event loop: one server worker's queries in flight at once


class AsyncReads:
    """Read-only queries on a pool per event loop, opened on the loop's first read and forgotten with the loop."""

    def __init__(self, conninfo: str, max_size: int = POOL_MAX_SIZE) -> None:
        self.conninfo = conninfo
        self.max_size = max_size
        self.pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Task] = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    async def query(self, query: str, params: Mapping[str, Any] | None, binary: bool = False) -> list[dict[str, Any]]:
        """The rows of ``query`` (psycopg's ``%(name)s`` style) as dicts; ``binary``: sent in binary by the server."""
        pool: AsyncConnectionPool = await self._pool()
        async with pool.connection() as connection:
            cursor = await connection.execute(query, params, binary=binary)
            return await cursor.fetchall()

    def _pool(self) -> asyncio.Task:
        # a task, so that the reads that come while the pool opens wait for it rather than open another
        loop = asyncio.get_running_loop()
        with self.lock:
            opening = self.pools.get(loop)
            if opening is None or (opening.done() and (opening.cancelled() or opening.exception() is not None)):
                opening = self.pools[loop] = loop.create_task(self._open())
        return opening

    async def _open(self) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(self.conninfo, min_size=1, max_size=self.max_size, open=False,
                                   connection_class=AsyncConnection,
                                   kwargs={"autocommit": True, "row_factory": dict_row})
        await pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        return pool

    def close(self) -> None:
        """Close every loop's pool: on its loop, soon, when that loop still runs; at once when it is stopped."""
        with self.lock:
            every = list(self.pools.items())
            self.pools.clear()
        for loop, opening in every:
            if loop.is_closed() or not opening.done() or opening.cancelled() or opening.exception() is not None:
                continue
            pool = opening.result()
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(pool.close(), loop)
            else:
                loop.run_until_complete(pool.close())
