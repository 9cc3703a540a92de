"""The event loop's own PostgreSQL connections of ``PostgresDatabase.query_async`` (smartcity/backends/database/
postgres_async.py), on the real server: at most their number open, reused when sound, replaced when the server ended
one, never reused inside a cancelled query, closed without a leak when the loop or the reads end."""

from __future__ import annotations

import asyncio
import gc
import warnings

import psycopg
import pytest

from smartcity.backends.database.postgres_async import AsyncReads

pytestmark = pytest.mark.real

PID = "SELECT pg_backend_pid() AS pid"


@pytest.fixture
def reads(real_stack):
    reads = AsyncReads(real_stack["SMARTCITY_DATABASE_URL"], max_size=3)
    yield reads
    reads.close()


def test_reads_share_at_most_max_size_connections_and_reuse_them(reads):
    async def twice() -> tuple[set[int], set[int]]:
        first = await asyncio.gather(*(reads.query(f"{PID}, pg_sleep(0.1) IS NULL AS slept", None) for _ in range(9)))
        second = await asyncio.gather(*(reads.query(PID, None) for _ in range(3)))
        return {rows[0]["pid"] for rows in first}, {rows[0]["pid"] for rows in second}

    first, second = asyncio.run(twice())
    assert len(first) == 3 and second <= first  # three at a time, then the same three again


def test_a_connection_the_server_ended_is_replaced(reads, real_stack):
    async def run() -> tuple[int, int]:
        before = (await reads.query(PID, None))[0]["pid"]
        with psycopg.connect(real_stack["SMARTCITY_DATABASE_URL"], autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", [before])
        with pytest.raises(psycopg.OperationalError):
            await reads.query(PID, None)  # the idle connection was cut: this read finds it out
        return before, (await reads.query(PID, None))[0]["pid"]

    before, after = asyncio.run(run())
    assert after != before


def test_a_read_cancelled_in_its_query_leaves_no_connection_inside_it(reads):
    async def run() -> list[dict]:
        slow = asyncio.ensure_future(reads.query("SELECT pg_sleep(5)", None))
        await asyncio.sleep(0.3)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        lane = next(iter(reads.lanes.values()))
        statuses = {connection.info.transaction_status for connection in lane.idle}
        assert statuses <= {psycopg.pq.TransactionStatus.IDLE}
        return await asyncio.wait_for(reads.query("SELECT 1 AS one", None), timeout=2)

    assert asyncio.run(run()) == [{"one": 1}]


def test_the_connections_of_a_finished_loop_and_of_close_are_closed_without_a_warning(reads):
    gc.collect()  # what earlier tests left to collect warns now, not below
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        asyncio.run(reads.query(PID, None))  # its loop ends: its connections close with it
        gc.collect()
        assert not reads.lanes

        async def read_then_close() -> None:
            await reads.query(PID, None)
            reads.close()

        asyncio.run(read_then_close())
        gc.collect()
    # psycopg's warning for a connection deleted open (another object's unclosed socket is not this test's)
    left_open = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert [message for message in left_open if "psycopg" in message] == []
