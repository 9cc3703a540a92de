"""Reads from Redis that do not block the event loop: one pipelined connection per loop, batched MGETs.

A cached API answer is one Redis read; made with redis-py's blocking client from a coroutine, the whole worker
waits for the round trip (about as long as the rest of the request), and redis-py's asyncio client costs twice
the CPU of the blocking one per call. :class:`RedisPipe` is the small part of the protocol those reads need: the
keys of every :meth:`RedisPipe.get_many` made in the same turn of the event loop go out as one ``MGET`` on one
connection, several such commands may be in flight at once (Redis answers a connection's commands in order), and
each caller gets its own values back. The connection is opened on first use (with the client's password, user,
database and TLS), and opened again after it fails; a failure or a reply later than the client's socket timeout
fails every read in flight with redis-py's :class:`redis.ConnectionError` / :class:`redis.TimeoutError`.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
import weakref
from collections import deque
from typing import Any, Sequence

import redis

MAX_BATCH_READS = 128  # reads in one MGET at most: a bigger turn of the loop sends several


def _command(*parts: bytes) -> bytes:
    """A command in RESP: an array of bulk strings."""
    return b"".join([b"*%d\r\n" % len(parts), *(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)])


def _ssl_context(options: dict[str, Any]) -> ssl.SSLContext | None:
    """The TLS context of a ``rediss://`` client's options (``ssl`` true; None without TLS): the certificate and
    host name are verified, against ``ssl_ca_certs`` when given, as the blocking client verifies them."""
    if not options.get("ssl"):
        return None
    context = ssl.create_default_context(cafile=options.get("ssl_ca_certs"))
    context.check_hostname = bool(options.get("ssl_check_hostname", True))
    return context


class _Replies:
    """Redis's replies read off one connection, each handed to the oldest read still waiting."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.waiting: deque[asyncio.Future] = deque()
        self.task = asyncio.get_running_loop().create_task(self._read_all())

    async def _reply(self) -> Any:
        line = await self.reader.readuntil(b"\r\n")
        kind, rest = line[:1], line[1:-2]
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else (await self.reader.readexactly(size + 2))[:-2]
        if kind == b"*":
            size = int(rest)
            return None if size < 0 else [await self._reply() for _ in range(size)]
        if kind == b"-":
            return redis.ResponseError(rest.decode(errors="replace"))
        if kind in (b"+", b":"):
            return rest
        raise redis.ConnectionError(f"unexpected reply from Redis: {line[:40]!r}")

    async def _read_all(self) -> None:
        try:
            while True:
                reply = await self._reply()
                future = self.waiting.popleft()
                if future.done():
                    continue
                if isinstance(reply, Exception):
                    future.set_exception(reply)
                else:
                    future.set_result(reply)
        except Exception as error:  # noqa: BLE001 - closed, reset, a reply it cannot read: the connection is done
            self.fail(redis.ConnectionError(f"Redis connection lost: {error or type(error).__name__}"))

    def send(self, command: bytes) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self.waiting.append(future)
        self.writer.write(command)
        return future

    def fail(self, error: Exception) -> None:
        """Fail every read in flight and close the connection (the next read opens another)."""
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        self.writer.close()
        if self.task is not asyncio.current_task():
            self.task.cancel()

    @property
    def open(self) -> bool:
        return not self.task.done() and not self.writer.is_closing()


class RedisPipe:
    """Batched, pipelined ``MGET`` s on one connection per event loop (see the module docstring): each loop that
    reads (a worker's, a test client's) has its own, forgotten with the loop."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options  # a redis-py client's connection options (host, port, db, password ...), ssl: TLS
        self.timeout_s = options.get("socket_timeout") or 30.0
        self.loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopReads] = weakref.WeakKeyDictionary()
        self.last: tuple[asyncio.AbstractEventLoop | None, _LoopReads | None] = (None, None)  # no lookup on the hot path
        self.lock = threading.Lock()

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values of ``keys`` in their order, read with the other reads of this turn of the loop."""
        loop = asyncio.get_running_loop()
        last_loop, reads = self.last
        if last_loop is not loop:
            with self.lock:
                reads = self.loops.get(loop)
                if reads is None:
                    reads = self.loops[loop] = _LoopReads(self, loop)
            self.last = (loop, reads)
        return await reads.get_many(keys)

    def close(self) -> None:
        """Close every loop's connection: at once from a coroutine of its loop, else soon on it (if it still runs)."""
        with self.lock:
            every = list(self.loops.values())
            self.loops.clear()
            self.last = (None, None)
        for reads in every:
            reads.close()


class _LoopReads:
    """The reads of one event loop: the batch of this turn, the connection."""

    def __init__(self, pipe: RedisPipe, loop: asyncio.AbstractEventLoop) -> None:
        self.pipe, self.loop = pipe, loop
        self.replies: _Replies | None = None
        self.connecting: asyncio.Task | None = None
        self.batch: list[tuple[Sequence[str], asyncio.Future]] = []

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        future = self.loop.create_future()
        if not self.batch:
            self.loop.call_soon(self._flush)
        self.batch.append((keys, future))
        if len(self.batch) >= MAX_BATCH_READS:
            self._flush()
        return await future

    def _flush(self) -> None:
        batch, self.batch = self.batch, []
        if batch:
            self.loop.create_task(self._send(batch))

    async def _send(self, batch: list[tuple[Sequence[str], asyncio.Future]]) -> None:
        keys = [key.encode() for keys, _ in batch for key in keys]
        timeout_s = self.pipe.timeout_s
        try:
            replies = await self._connection()
            values = await asyncio.wait_for(asyncio.shield(replies.send(_command(b"MGET", *keys))), timeout_s)
        except asyncio.TimeoutError:
            error: Exception = redis.TimeoutError(f"Redis did not answer within {timeout_s:g} s")
            if self.replies is not None:
                self.replies.fail(error)
        except Exception as failure:  # noqa: BLE001 - handed to every caller of the batch
            error = failure if isinstance(failure, redis.RedisError) else redis.ConnectionError(str(failure))
        else:
            start = 0
            for keys, future in batch:
                if not future.done():
                    future.set_result(values[start:start + len(keys)])
                start += len(keys)
            return
        for _, future in batch:
            if not future.done():
                future.set_exception(error)

    async def _connection(self) -> _Replies:
        if self.replies is not None and self.replies.open:
            return self.replies
        if self.connecting is None or self.connecting.done():
            self.connecting = self.loop.create_task(self._connect())
        self.replies = await asyncio.shield(self.connecting)
        return self.replies

    async def _connect(self) -> _Replies:
        options, timeout_s = self.pipe.options, self.pipe.timeout_s
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(
                options.get("host", "localhost"), options.get("port", 6379), ssl=_ssl_context(options)),
                options.get("socket_connect_timeout") or timeout_s)
        except (OSError, asyncio.TimeoutError) as error:
            raise redis.ConnectionError(f"cannot connect to Redis at {options.get('host')}:{options.get('port')}: "
                                        f"{error or type(error).__name__}") from None
        replies = _Replies(reader, writer)
        setup = []
        if options.get("password"):
            credentials = [options["username"]] if options.get("username") else []
            setup.append(replies.send(_command(b"AUTH", *(str(c).encode() for c in [*credentials, options["password"]]))))
        if options.get("db"):
            setup.append(replies.send(_command(b"SELECT", str(options["db"]).encode())))
        try:
            await asyncio.wait_for(asyncio.gather(*setup), timeout_s)
        except BaseException:
            replies.fail(redis.ConnectionError("Redis refused the connection's setup"))
            raise
        return replies

    def close(self) -> None:
        replies, self.replies = self.replies, None
        if replies is None or self.loop.is_closed():
            return
        error = redis.ConnectionError("the cache was closed")
        try:
            if asyncio.get_running_loop() is self.loop:
                replies.fail(error)
                return
        except RuntimeError:  # no loop runs here
            pass
        try:
            self.loop.call_soon_threadsafe(replies.fail, error)
        except RuntimeError:  # the loop closed meanwhile
            pass
