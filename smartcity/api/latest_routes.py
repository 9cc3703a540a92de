"""The route pair every real-time group has: list the latest state of every entity, get one by id (404 if absent).

:func:`add_latest_routes` adds both to a router for one kind of entity (:class:`LatestEntities`: how to read them
in id order from a given one, and one by id, from the latest states). The listing is a page by id, read from the
stream's index in the cache a page at a time (never a scan of every key), filtered by the query parameters of a
``filters`` dependency that returns :class:`Filters`, and served from the read cache; one entity is read on every
request (a single cache read) unless ``one_ttl_s`` says it is worth keeping (a road segment, made of its sensors).

The routes keep the names, descriptions and parameters their OpenAPI document gives them: ``list_name`` and
``get_name`` make the operation ids and summaries, ``id_name`` the path parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel

from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, uncached_read
from smartcity.api.dependencies import LatestStatesDep, ReadCacheDep
from smartcity.api.pagination import Cursor, Page, PageSize, page_in_key_order
from smartcity.api.problems import not_found, problem_responses
from smartcity.storage.latest_state import LatestState

Item = TypeVar("Item", bound=BaseModel)
LATEST_TTL_S = 5.0


@dataclass(frozen=True)
class Filters:
    """A listing's filters: their values (a cursor is bound to them) and whether an entity passes.

    Without ``keep``, an entity passes when each given value equals its attribute of the same name."""

    values: Mapping[str, Any]
    keep: Callable[[Any], bool] | None = None

    def __call__(self, item: Any) -> bool:
        if self.keep is not None:
            return self.keep(item)
        return all(value is None or getattr(item, name) == value for name, value in self.values.items())


@dataclass(frozen=True)
class LatestEntities(Generic[Item]):
    """One kind of entity in the latest states: every one in id order after a given id (all when None), one by id
    (None when absent), the id of one."""

    model: type[Item]
    every: Callable[[LatestState, str | None], Iterable[Item]]
    one: Callable[[LatestState, str], Item | None]
    key: Callable[[Item], str]
    missing: str  # the 404's subject, ``{}`` standing for the id: "sensor {}"


def stream_entities(stream: str, model: type[Item], convert: Callable[[dict[str, Any]], Item],
                    key: Callable[[Item], str], missing: str) -> LatestEntities[Item]:
    """The entities of one stream, each its latest state in the cache converted to ``model``."""
    def one(latest: LatestState, entity_id: str) -> Item | None:
        state = latest.read(stream, entity_id)
        return None if state is None else convert(state)

    return LatestEntities(model, lambda latest, after: map(convert, latest.iter_states(stream, after)), one, key,
                          missing)


def add_latest_routes(
    router: APIRouter,
    path: str,
    id_name: str,
    entities: LatestEntities[Any],
    filters: Callable[..., Filters],
    names: tuple[str, str],
    descriptions: tuple[str | None, str | None],
    one_ttl_s: float | None = None,
) -> None:
    """``GET <path>`` (a page of every entity's latest state, by id) and ``GET <path>/{<id_name>}`` (one).

    ``names`` and ``descriptions``: of the listing and of the one-entity route, in that order."""
    page_model = Page[entities.model]  # type: ignore[name-defined]

    def listing(request: Request, latest: LatestStatesDep, read_cache: ReadCacheDep, limit: PageSize = 100,
                cursor: Cursor = None, chosen: Filters = Depends(filters)) -> Response:
        def produce() -> BaseModel:
            def kept(after: str | None) -> Iterable[Any]:
                return (item for item in entities.every(latest, after) if chosen(item))

            return page_in_key_order(page_model, kept, entities.key, limit, cursor, dict(chosen.values))

        return cached_read(request, read_cache, produce, ttl_s=LATEST_TTL_S)

    def one(request: Request, latest: LatestStatesDep, read_cache: ReadCacheDep,
            entity_id: str = Path(alias=id_name)) -> Response:
        def produce() -> BaseModel:
            item = entities.one(latest, entity_id)
            if item is None:
                raise not_found(entities.missing.format(entity_id))
            return item

        if one_ttl_s is None:
            return uncached_read(request, produce, max_age_s=5)
        return cached_read(request, read_cache, produce, ttl_s=one_ttl_s)

    router.add_api_route(path, listing, methods=["GET"], response_model=page_model, name=names[0],
                         description=descriptions[0] or "", responses=NOT_MODIFIED_RESPONSE)
    router.add_api_route(f"{path}/{{{id_name}}}", one, methods=["GET"], response_model=entities.model,
                         name=names[1], description=descriptions[1] or "",
                         responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)})
