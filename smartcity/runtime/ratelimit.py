"""Per-caller rate limits of the gateway: a token bucket per caller (``rate`` tokens a second, ``burst`` at most).

A caller is its credential (the SHA-256 of its bearer token or API key: one bucket per token, per source key), or,
without one, its client address. A client address also has a bucket of :data:`ADDRESS_FACTOR` times the rate for
all it sends, so that made-up credentials, each a fresh bucket, do not lift the limit of one address.

The buckets live in this process (:class:`MemoryBuckets`) or, when the cache is Redis, in Redis
(:class:`RedisBuckets`, one atomic script per request), so that several gateway workers share them. When Redis
cannot be reached the request goes on (logged): a cache outage must not shut every door.
:meth:`RateLimiter.retry_after` says how many seconds a refused caller should wait (the 429's ``Retry-After``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from typing import Mapping, Protocol

logger = logging.getLogger(__name__)
BUCKETS_KEPT = 100_000
ADDRESS_FACTOR = 10  # an address's bucket, whatever credentials it sends: e.g. many sensors behind one gateway
REDIS_PREFIX = "smartcity:ratelimit:"
# KEYS[1]: the bucket; ARGV: rate, burst, now (s). Returns 0 when a token was taken, else the ms to wait.
TAKE_SCRIPT = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


class Buckets(Protocol):
    """Where the buckets are kept; ``outages``: the errors of a store that cannot be reached."""

    outages: tuple[type[Exception], ...]

    async def take(self, caller: str, rate: float, burst: int) -> float:
        """Take a token of ``caller``'s bucket: 0 when there was one, else the seconds until there is."""


class MemoryBuckets:
    """The buckets of this process."""

    outages: tuple[type[Exception], ...] = ()

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    async def take(self, caller: str, rate: float, burst: int) -> float:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(caller, (float(burst), now))
            tokens = min(float(burst), tokens + (now - at) * rate)
            wait = 0.0 if tokens >= 1 else (1 - tokens) / rate
            if len(self._buckets) >= BUCKETS_KEPT:
                self._buckets.clear()  # a flood of one-off callers; full buckets are what new ones get anyway
            self._buckets[caller] = (tokens - 1 if wait == 0 else tokens, now)
        return wait


class RedisBuckets:
    """The buckets in Redis, shared by every worker using it."""

    def __init__(self, url: str) -> None:
        import redis.asyncio
        import redis.exceptions

        self.outages = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        from smartcity.backends.cache.redis import tls_options

        self._client = redis.asyncio.Redis.from_url(url, socket_timeout=1.0, **tls_options(url))
        self._script = self._client.register_script(TAKE_SCRIPT)

    async def take(self, caller: str, rate: float, burst: int) -> float:
        waited_ms = await self._script(keys=[REDIS_PREFIX + caller], args=[rate, burst, time.time()])
        return int(waited_ms) / 1000

    async def close(self) -> None:
        await self._client.aclose()


def caller_of(headers: Mapping[str, str], client: str) -> str:
    """The bucket's name: the digest of the caller's credential, or its client address."""
    credential = headers.get("x-api-key") or headers.get("authorization", "").partition(" ")[2].strip()
    if credential:
        return "credential:" + hashlib.sha256(credential.encode()).hexdigest()
    return f"address:{client}"


class RateLimiter:
    """``rate`` requests a second per caller, ``burst`` at once."""

    def __init__(self, rate: float, burst: int, buckets: Buckets) -> None:
        self.rate, self.burst, self.buckets = rate, burst, buckets

    async def retry_after(self, headers: Mapping[str, str], client: str) -> int | None:
        """None when the caller may go on, else the whole seconds it should wait."""
        caller = caller_of(headers, client)
        try:
            wait = await self.buckets.take(caller, self.rate, self.burst)
            if caller.startswith("credential:"):
                wait = max(wait, await self.buckets.take(f"all-from:{client}", self.rate * ADDRESS_FACTOR,
                                                         self.burst * ADDRESS_FACTOR))
        except self.buckets.outages as error:
            logger.warning("rate limit not checked: %s", error)
            return None
        return max(1, math.ceil(wait)) if wait > 0 else None

    async def close(self) -> None:
        close = getattr(self.buckets, "close", None)
        if close is not None:
            await close()


def rate_limiter(rate: float, burst: int, cache_url: str) -> RateLimiter | None:
    """The limiter the settings ask for: None when ``rate`` is 0, in Redis when the cache is Redis."""
    if rate <= 0:
        return None
    buckets: Buckets = RedisBuckets(cache_url) if cache_url.startswith(("redis://", "rediss://")) else MemoryBuckets()
    return RateLimiter(rate, burst, buckets)

