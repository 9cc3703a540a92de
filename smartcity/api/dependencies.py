"""What an API route needs, as FastAPI dependencies: the database, the latest states (the cache backend, with the
settings' time to live) and the read cache of the function whose app serves the request.

The API functions' routers are module-level :class:`fastapi.APIRouter` s; each function's ``create_app`` builds
its app with :func:`smartcity.api.app.create_api_app`, which keeps the runtime's context in ``app.state``, and
these dependencies reach the backends through it (opened on first use). They are coroutines: they only look
things up, so they run on the event loop rather than costing a hop to a worker thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from smartcity.api.app import ApiContext, read_cache_of
from smartcity.api.caching import ReadCache
from smartcity.backends.database import Database
from smartcity.storage.latest_state import LatestState


def context_of(request: Request) -> ApiContext:
    """The runtime context of the function whose app serves ``request``."""
    return request.app.state.context


async def database_of(request: Request) -> Database:
    """The database of the API's reads (every route's queries are read-only): the replica that
    ``SMARTCITY_DATABASE_READ_URL`` names, else the primary. Writes (the incident workflow) use the primary."""
    return context_of(request).read_database


async def latest_states_of(request: Request) -> LatestState:
    """The latest states in the function's cache backend (one reader per app)."""
    state = request.app.state
    if getattr(state, "latest_states", None) is None:
        context = context_of(request)
        state.latest_states = LatestState(context.cache, context.settings.latest_state_ttl_s)
    return state.latest_states


async def _read_cache(request: Request) -> ReadCache:
    return read_cache_of(request)


DatabaseDep = Annotated[Database, Depends(database_of)]
LatestStatesDep = Annotated[LatestState, Depends(latest_states_of)]
ReadCacheDep = Annotated[ReadCache, Depends(_read_cache)]
