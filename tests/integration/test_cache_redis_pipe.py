"""Redis reads from coroutines (smartcity.backends.cache.redis_pipe): the database and credentials of the URL, a
connection that fails, a server that does not answer, and the connection opened again afterwards."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from smartcity.backends.cache import open_cache
from smartcity.backends.cache.redis_pipe import RedisPipe

REDIS_DB = 13  # the tests' own database


@pytest.fixture
def cache(real_stack):
    cache = open_cache(real_stack["SMARTCITY_CACHE_URL"].rsplit("/", 1)[0] + f"/{REDIS_DB}")
    prefix = f"pipe:{uuid.uuid4().hex[:12]}:"
    yield cache, prefix
    cache.delete(*cache.keys(prefix))
    cache.close()


async def _silent_server(hang_up: bool):
    """A loopback server that never answers a command: it closes the connection at the first one when
    ``hang_up``, else keeps it open."""
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(1)
            if not hang_up:
                await asyncio.sleep(10)
        finally:
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_reads_the_database_of_the_url_and_opens_the_connection_again_after_it_is_lost(cache):
    cache, prefix = cache
    cache.set(f"{prefix}k", b"in database 13")

    async def read_lose_read() -> tuple:
        first = await cache.get_many_async([f"{prefix}k"])
        cache.pipe.loops[asyncio.get_running_loop()].replies.writer.transport.abort()  # broken between reads
        await asyncio.sleep(0.05)
        second = await cache.get_many_async([f"{prefix}k", f"{prefix}absent"])
        cache.pipe.close()
        return first, second

    assert asyncio.run(read_lose_read()) == ([b"in database 13"], [b"in database 13", None])


def test_a_connection_closed_by_the_server_fails_the_reads_in_flight():
    async def scenario() -> None:
        server = await _silent_server(hang_up=True)
        pipe = RedisPipe({"host": "127.0.0.1", "port": server.sockets[0].getsockname()[1], "socket_timeout": 5})
        with pytest.raises(redis.ConnectionError, match="lost"):
            await asyncio.gather(pipe.get_many(["a"]), pipe.get_many(["b"]))
        server.close()

    asyncio.run(scenario())


def test_a_server_that_does_not_answer_times_out():
    async def scenario() -> None:
        server = await _silent_server(hang_up=False)
        pipe = RedisPipe({"host": "127.0.0.1", "port": server.sockets[0].getsockname()[1], "socket_timeout": 0.2})
        with pytest.raises(redis.TimeoutError, match="0.2 s"):
            await pipe.get_many(["a"])
        server.close()

    asyncio.run(scenario())


def test_no_server_and_a_refused_password_are_errors(real_stack):
    from tests.ports import free_port

    with pytest.raises(redis.ConnectionError, match="cannot connect"):
        asyncio.run(RedisPipe({"host": "127.0.0.1", "port": free_port(), "socket_timeout": 1}).get_many(["a"]))
    url = real_stack["SMARTCITY_CACHE_URL"]
    options = {**redis.Redis.from_url(url).connection_pool.connection_kwargs, "username": "nobody", "password": "x"}
    with pytest.raises(redis.ResponseError):
        asyncio.run(RedisPipe(options).get_many(["a"]))


def test_event_loops_in_two_threads_read_at_once_each_on_its_own_connection(cache):
    from concurrent.futures import ThreadPoolExecutor

    cache, prefix = cache
    cache.set_many({f"{prefix}a": b"1", f"{prefix}b": b"2"})

    async def reads() -> None:
        for _ in range(100):
            assert await asyncio.gather(cache.get_many_async([f"{prefix}a"]), cache.get_many_async([f"{prefix}b"])) \
                == [[b"1"], [b"2"]]
        cache.pipe.loops[asyncio.get_running_loop()].close()

    with ThreadPoolExecutor(2) as threads:
        list(threads.map(lambda _: asyncio.run(asyncio.wait_for(reads(), 20)), range(2)))


def test_a_turn_of_the_loop_with_more_reads_than_one_mget_takes_answers_each(cache):
    from smartcity.backends.cache.redis_pipe import MAX_BATCH_READS

    cache, prefix = cache
    count = 2 * MAX_BATCH_READS + 5
    cache.set_many({f"{prefix}{n}": str(n).encode() for n in range(count)})

    async def reads() -> list:
        answers = await asyncio.gather(*(cache.get_many_async([f"{prefix}{n}"]) for n in range(count)))
        cache.pipe.close()
        return answers

    assert asyncio.run(reads()) == [[str(n).encode()] for n in range(count)]
