"""Cache backends: ``redis://`` and ``rediss://`` (TLS) on redis-py, and ``memory://`` (in-process)."""

from smartcity.backends import load_backend
from smartcity.backends.cache.base import Cache

SCHEMES = {
    "redis": "smartcity.backends.cache.redis:RedisCache",
    "rediss": "smartcity.backends.cache.redis:RedisCache",
    "memory": "smartcity.backends.cache.memory:MemoryCache",
}


def open_cache(url: str, setting: str = "SMARTCITY_CACHE_URL", **options) -> Cache:
    """Open the backend that the URL's scheme names; ``options`` go to its ``from_url`` (e.g. ``settings=``)."""
    return load_backend(setting, url, SCHEMES, **options)


__all__ = ["Cache", "SCHEMES", "open_cache"]
