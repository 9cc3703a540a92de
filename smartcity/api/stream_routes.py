"""The generic listing of a stream whose descriptor asks for one: ``/v1/<group>/<topic>`` and ``.../{entity_id}``.

A descriptor with ``api_group`` set (:mod:`smartcity.streams`) gets, from the API function of that group, a page of
its entities' latest states in id order and one entity by id (404 when absent), through
:func:`smartcity.api.latest_routes.add_latest_routes`; each item is the entity's last event, in the stream's model.
A model with a ``zone`` can be filtered by it (``?zone=Z11``). :func:`smartcity.api.app.create_api_app` adds them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from smartcity.api.latest_routes import Filters, LatestEntities, add_latest_routes, stream_entities
from smartcity.events import STREAMS, Stream


def entities_of(stream: Stream) -> LatestEntities[Any]:
    """The stream's entities: each one's latest state as the stream's model, keyed as its index is."""
    return stream_entities(stream.topic, stream.model, lambda state: stream.model.model_validate(state["data"]),
                           lambda event: str(getattr(event, stream.latest_field)), f"{stream.topic} entity {{}}")


def _filters(stream: Stream):
    if "zone" not in stream.model.model_fields:
        return lambda: Filters({})

    def by_zone(zone: str | None = None) -> Filters:
        return Filters({"zone": zone})

    return by_zone


def add_stream_routes(app: FastAPI, group: str, **router_options: Any) -> list[str]:
    """Add the listing of every stream of ``group`` to ``app``; the paths added."""
    streams = [stream for stream in STREAMS.values() if stream.api_group == group]
    if not streams:
        return []
    router = APIRouter(prefix=f"/v1/{group}", **router_options)
    for stream in streams:
        name = stream.topic.replace("-", "_")
        add_latest_routes(router, f"/{stream.topic}", "entity_id", entities_of(stream), _filters(stream),
                          (f"list_{name}", f"get_{name}"),
                          (f"Every {stream.topic} entity's latest state, a page by id: {stream.description}.",
                           f"One {stream.topic} entity's latest state."))
    app.include_router(router)
    return [f"/v1/{group}/{stream.topic}" for stream in streams]
