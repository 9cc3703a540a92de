"""The Redis cache (``redis://[:password@]host:port/db`` or ``rediss://`` for TLS), on redis-py.

Over ``rediss://`` the server's certificate and host name are verified, against ``SMARTCITY_TLS_CA_FILE`` when set.

``*_many`` calls are one command each (MGET; MSET, or a script of SETs with a TTL); TTLs are set in milliseconds.
:meth:`RedisCache.get_many_async` reads without blocking the event loop, batched with the other reads of the
same turn of the loop (:mod:`smartcity.backends.cache.redis_pipe`).
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import redis

from smartcity.backends._url import CONNECT_TIMEOUT_S, host_port, tls_ca_file, unreachable
from smartcity.backends.cache.base import check_ttl
from smartcity.backends.cache.redis_pipe import RedisPipe
from smartcity.settings import Settings

SCAN_BATCH = 1000
# One command sets up to this many keys: a script blocks the server while it runs (5,000 SETs: a few ms).
SET_MANY_CHUNK = 5000
# SET each KEYS[i] to ARGV[i + 1], expiring in ARGV[1] ms. One command instead of a pipeline of SETs: redis-py
# spends Python time on each command it packs and each reply it parses (11,250 keys of 500 bytes: 120-170 ms of
# CPU and 0.6-1.0 s wall on a loaded machine; the script 25-30 ms of CPU and 0.23-0.28 s wall).
_SET_WITH_TTL = """
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'PX', ARGV[1])
end
return #KEYS
"""
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def tls_options(url: str, settings: Settings | None = None) -> dict[str, object]:
    """redis-py's options for a ``rediss://`` URL: verify the certificate and host name (against the settings' CA)."""
    if not url.startswith("rediss://"):
        return {}
    return {"ssl_cert_reqs": "required", "ssl_check_hostname": True, "ssl_ca_certs": tls_ca_file(settings)}


class RedisCache:
    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        pool = client.connection_pool
        self.pipe = RedisPipe({**pool.connection_kwargs, "ssl": issubclass(pool.connection_class, redis.SSLConnection)})
        self._set_with_ttl = client.register_script(_SET_WITH_TTL)  # EVALSHA, loaded on first use

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> RedisCache:
        host, port = host_port(url, setting, 6379)
        client = redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=30, health_check_interval=30,
                                      **tls_options(url, settings))
        try:
            client.ping()
        except redis.RedisError as error:
            client.close()
            raise unreachable(setting, "Redis", f"{host}:{port}", error) from None
        return cls(client)

    def get(self, key: str) -> bytes | None:
        return self.client.get(key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.client.mget(keys) if keys else []

    async def get_many_async(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self.pipe.get_many(keys) if keys else []

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self.client.set(key, value, px=_millis(check_ttl(ttl_s)))

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> None:
        milliseconds = _millis(check_ttl(ttl_s))
        keys, values = list(items), list(items.values())
        for start in range(0, len(keys), SET_MANY_CHUNK):
            chunk = slice(start, start + SET_MANY_CHUNK)
            if milliseconds is None:
                self.client.mset(dict(zip(keys[chunk], values[chunk])))
            else:
                self._set_with_ttl(keys=keys[chunk], args=[milliseconds, *values[chunk]])

    def delete(self, *keys: str) -> int:
        return self.client.delete(*keys) if keys else 0

    def keys(self, prefix: str) -> list[str]:
        pattern = _GLOB_SPECIAL.sub(r"\\\1", prefix) + "*"
        return sorted(key.decode() for key in self.client.scan_iter(match=pattern, count=SCAN_BATCH))

    def index_add(self, index: str, members: Sequence[str]) -> None:
        if members:  # every score 0: a lex range then orders the members by their bytes
            self.client.zadd(index, dict.fromkeys(members, 0))

    def index_range(self, index: str, after: str | None, limit: int) -> list[str]:
        start = "-" if after is None else f"({after}"
        return [member.decode() for member in self.client.zrangebylex(index, start, "+", start=0, num=limit)]

    def index_remove(self, index: str, *members: str) -> int:
        return self.client.zrem(index, *members) if members else 0

    def incr(self, key: str, amount: int = 1) -> int:
        try:
            return self.client.incrby(key, amount)
        except redis.ResponseError as error:
            raise ValueError(f"the value of {key!r} is not an integer: {error}") from None

    def close(self) -> None:
        self.pipe.close()
        self.client.close()


def _millis(ttl_s: float | None) -> int | None:
    return None if ttl_s is None else max(1, math.ceil(ttl_s * 1000))
