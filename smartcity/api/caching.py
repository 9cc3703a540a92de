"""Hot API reads kept in the cache backend (Redis, or memory), with ETag/304 and Cache-Control.

Invalidation is by generation counters, one per tag (``incidents``, ``incident:<id>`` ...): an entry records the
generations of its tags when it was computed, and is served only while they are unchanged. A write bumps the
counters of the tags it touches (:meth:`ReadCache.invalidate`, after its transaction commits), so every entry
that depends on it is stale from then on, however many there are, with no key scan. A hit costs one round trip:
the entry and its tags' counters are read together. Every entry also has a TTL, which bounds how stale a read can
be when the data changes behind the API's back (the streaming jobs writing latest states and aggregates).

Responses carry a strong ``ETag`` (a digest of the body) and ``Cache-Control: private`` (they need a token, so
shared caches must not keep them); a request whose ``If-None-Match`` names the current ETag gets a 304.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from urllib.parse import urlencode

import orjson
from fastapi import Request, Response
from pydantic import BaseModel

from smartcity.api.rounding import rounded
from smartcity.backends.cache import Cache

NOT_MODIFIED_RESPONSE = {304: {"description": "Not Modified: the If-None-Match ETag is still current."}}


@dataclass(frozen=True)
class CachedBody:
    """A kept response body, with what serving it needs: its ETag, its max-age, the tags it depends on and the
    least role of the route it came from (the shortcut of :mod:`smartcity.api.app` serves it to no one below)."""

    body: bytes
    etag: str
    max_age_s: int = 0
    tags: tuple[str, ...] = ()
    role: str = "viewer"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class ReadCache:
    """Entries ``<prefix>read:<digest of the request>``, counters ``<prefix>gen:<tag>``.

    An entry is ``stamp \n tags \n role \n max-age \n etag \n body``, the stamp being its tags' generations
    when it was computed.
    """

    def __init__(self, cache: Cache, prefix: str = "api:") -> None:
        self.cache = cache
        self.prefix = prefix

    def _entry_key(self, key: str) -> str:
        return f"{self.prefix}read:{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"

    def _generation_keys(self, tags: Sequence[str]) -> list[str]:
        return [f"{self.prefix}gen:{tag}" for tag in tags]

    @staticmethod
    def _stamp(generations: Sequence[bytes | None]) -> bytes:
        return b",".join(generation or b"0" for generation in generations)

    @staticmethod
    def _decode(entry: bytes) -> tuple[bytes, CachedBody]:
        stamp, tags, role, max_age, etag, body = entry.split(b"\n", 5)
        tag_names = tuple(tags.decode().split(",")) if tags else ()
        return stamp, CachedBody(body, etag.decode(), int(max_age), tag_names, role.decode())

    def get(self, key: str, tags: Sequence[str]) -> tuple[CachedBody | None, bytes]:
        """The entry if it is current, and the tags' generations now (to :meth:`put` a fresh entry with)."""
        entry, *generations = self.cache.get_many([self._entry_key(key), *self._generation_keys(tags)])
        stamp = self._stamp(generations)
        if entry is None:
            return None, stamp
        entry_stamp, cached = self._decode(entry)
        return (cached if entry_stamp == stamp else None), stamp

    async def lookup(self, key: str) -> CachedBody | None:
        """The entry under ``key`` if it is current, whatever its tags (one more round trip when it has some);
        awaited without blocking the event loop (:meth:`Cache.get_many_async`)."""
        entry, = await self.cache.get_many_async([self._entry_key(key)])
        if entry is None:
            return None
        entry_stamp, cached = self._decode(entry)
        if cached.tags:
            generations = await self.cache.get_many_async(self._generation_keys(cached.tags))
            if self._stamp(generations) != entry_stamp:
                return None
        return cached

    def put(self, key: str, stamp: bytes, body: bytes, ttl_s: float, tags: Sequence[str] = (),
            role: str = "viewer", max_age_s: int = 0) -> CachedBody:
        """Keep ``body`` under ``key``, computed when the tags' generations were ``stamp``."""
        cached = CachedBody(body, etag_of(body), max_age_s, tuple(tags), role)
        header = [stamp, ",".join(tags).encode(), role.encode(), str(max_age_s).encode(), cached.etag.encode()]
        self.cache.set(self._entry_key(key), b"\n".join([*header, body]), ttl_s=ttl_s)
        return cached

    def invalidate(self, *tags: str) -> None:
        """Make every entry that depends on one of ``tags`` stale. Call it after the write has committed."""
        for generation_key in self._generation_keys(tags):
            self.cache.incr(generation_key)


def request_key(request: Request) -> str:
    """What identifies a read: its path and its query parameters sorted by name (a repeated parameter keeps the
    order of its values, which can matter: ``zones=Z11&zones=Z33``). Names and values are encoded again, so a
    value holding ``&`` or ``=`` is not read as more parameters (``a=1%26b%3D2`` is not ``a=1&b=2``)."""
    scope = request.scope
    # request.url.path, without building the whole URL (a hot read's key is made on every request)
    path = scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    if not scope.get("query_string"):
        return f"{path}?"
    items = sorted(request.query_params.multi_items(), key=lambda item: item[0])
    return f"{path}?{urlencode(items)}"


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return etag in candidates


def conditional_response(request: Request, cached: CachedBody) -> Response:
    """200 with the body, or 304 when the client's ``If-None-Match`` already names this ETag."""
    headers = {"ETag": cached.etag, "Cache-Control": f"private, max-age={cached.max_age_s}"}
    if _etag_matches(request.headers.get("if-none-match"), cached.etag):
        return Response(status_code=304, headers=headers)
    return Response(cached.body, media_type="application/json", headers=headers)


def json_body(model: BaseModel) -> bytes:
    """The model's JSON, its measures rounded to their unit's precision (:mod:`smartcity.api.rounding`)."""
    return document_body(model.model_dump(mode="json"))


def document_body(document: Any) -> bytes:
    """JSON of plain data, written as pydantic writes its models (aware datetimes in ISO 8601 with ``Z``, NaN as
    null), measures rounded (:mod:`smartcity.api.rounding`): also for answers built straight from rows, where
    making models first would cost more than the query."""
    return rounded_body(rounded(document))


def rounded_body(document: Any) -> bytes:
    """:func:`document_body` of a document whose floats are rounded already (:func:`smartcity.api.rounding.rounded_rows`)."""
    return orjson.dumps(document, option=orjson.OPT_UTC_Z)


def cached_read(
    request: Request,
    read_cache: ReadCache,
    produce: Callable[[], BaseModel],
    tags: Sequence[str] = (),
    ttl_s: float = 5.0,
    max_age_s: int = 5,
    role: str = "viewer",
) -> Response:
    """Serve a read from the cache, or compute it with ``produce``, keep it and serve it.

    ``role`` is the least role of the route: the cache shortcut serves the entry to callers with at least it.
    """
    key = request_key(request)
    cached, stamp = read_cache.get(key, tags)
    if cached is None:
        cached = read_cache.put(key, stamp, json_body(produce()), ttl_s, tags, role, max_age_s)
    return conditional_response(request, cached)


def uncached_read(request: Request, produce: Callable[[], BaseModel], max_age_s: int = 0) -> Response:
    """A read computed every time, still with an ETag so an unchanged answer can be a 304."""
    return uncached_body(request, json_body(produce()), max_age_s)


def uncached_body(request: Request, body: bytes, max_age_s: int = 0) -> Response:
    """An answer's JSON ``body`` with its ETag (a 304 when the client has it)."""
    return conditional_response(request, CachedBody(body, etag_of(body), max_age_s))
