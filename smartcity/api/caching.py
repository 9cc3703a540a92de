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
from typing import Callable, Sequence

from fastapi import Request, Response
from pydantic import BaseModel

from smartcity.api.problems import not_found
from smartcity.backends.cache import Cache

NOT_MODIFIED_RESPONSE = {304: {"description": "Not Modified: the If-None-Match ETag is still current."}}


@dataclass(frozen=True)
class CachedBody:
    body: bytes
    etag: str


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


class ReadCache:
    """Entries ``<prefix>read:<digest of the request>``, counters ``<prefix>gen:<tag>``."""

    def __init__(self, cache: Cache, prefix: str = "api:") -> None:
        self.cache = cache
        self.prefix = prefix

    def _entry_key(self, key: str) -> str:
        return f"{self.prefix}read:{hashlib.blake2b(key.encode(), digest_size=16).hexdigest()}"

    def _generation_keys(self, tags: Sequence[str]) -> list[str]:
        return [f"{self.prefix}gen:{tag}" for tag in tags]

    def get(self, key: str, tags: Sequence[str]) -> tuple[CachedBody | None, bytes]:
        """The entry if it is current, and the tags' generations now (to :meth:`put` a fresh entry with)."""
        entry, *generations = self.cache.get_many([self._entry_key(key), *self._generation_keys(tags)])
        stamp = b",".join(generation or b"0" for generation in generations)
        if entry is None:
            return None, stamp
        entry_stamp, etag, body = entry.split(b"\n", 2)
        if entry_stamp != stamp:
            return None, stamp
        return CachedBody(body, etag.decode()), stamp

    def put(self, key: str, stamp: bytes, body: bytes, ttl_s: float) -> CachedBody:
        """Keep ``body`` under ``key``, computed when the tags' generations were ``stamp``."""
        cached = CachedBody(body, etag_of(body))
        self.cache.set(self._entry_key(key), b"\n".join([stamp, cached.etag.encode(), body]), ttl_s=ttl_s)
        return cached

    def invalidate(self, *tags: str) -> None:
        """Make every entry that depends on one of ``tags`` stale. Call it after the write has committed."""
        for generation_key in self._generation_keys(tags):
            self.cache.incr(generation_key)


def request_key(request: Request) -> str:
    """What identifies a read: its path and its query parameters in a canonical order."""
    query = "&".join(f"{name}={value}" for name, value in sorted(request.query_params.multi_items()))
    return f"{request.url.path}?{query}"


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    candidates = {candidate.strip().removeprefix("W/") for candidate in if_none_match.split(",")}
    return etag in candidates


def conditional_response(request: Request, cached: CachedBody, max_age_s: int) -> Response:
    """200 with the body, or 304 when the client's ``If-None-Match`` already names this ETag."""
    headers = {"ETag": cached.etag, "Cache-Control": f"private, max-age={max_age_s}"}
    if _etag_matches(request.headers.get("if-none-match"), cached.etag):
        return Response(status_code=304, headers=headers)
    return Response(cached.body, media_type="application/json", headers=headers)


def json_body(model: BaseModel) -> bytes:
    return model.model_dump_json().encode()


def cached_read(
    request: Request,
    read_cache: ReadCache,
    produce: Callable[[], BaseModel],
    tags: Sequence[str] = (),
    ttl_s: float = 5.0,
    max_age_s: int = 5,
) -> Response:
    """Serve a read from the cache, or compute it with ``produce``, keep it and serve it."""
    key = request_key(request)
    cached, stamp = read_cache.get(key, tags)
    if cached is None:
        cached = read_cache.put(key, stamp, json_body(produce()), ttl_s)
    return conditional_response(request, cached, max_age_s)


def uncached_read(request: Request, produce: Callable[[], BaseModel], max_age_s: int = 0) -> Response:
    """A read computed every time, still with an ETag so an unchanged answer can be a 304."""
    body = json_body(produce())
    return conditional_response(request, CachedBody(body, etag_of(body)), max_age_s)


def latest_state_read(
    request: Request, state: dict | None, convert: Callable[[dict], BaseModel], what: str, max_age_s: int = 5
) -> Response:
    """One entity's latest state (as :class:`smartcity.storage.latest_state.LatestState` reads it), or a 404 naming it."""
    if state is None:
        raise not_found(what)
    return uncached_read(request, lambda: convert(state), max_age_s=max_age_s)
