"""The FastAPI app of one API endpoint group, with auth, problem+json errors and the read cache wired in.

Each API function's ``handler.py`` declares a module-level router of ``/v1/<group>/...`` routes, and its
``create_app`` builds the app with :func:`create_api_app` (which keeps the runtime's context in ``app.state``) and
includes the router. Routes are declared with their full public path, so the same app answers at
``/v1/<group>/...`` (the gateway's API routes) and at ``/function/api-<group>/v1/<group>/...`` (the OpenFaaS route,
where the gateway's mount sets the ASGI ``root_path``).

Routes reach the backends and the read cache through the dependencies of :mod:`smartcity.api.dependencies`
(the context's lazily opened ``database`` and ``cache``; :func:`read_cache_of`).

:class:`ApiApp` answers a GET from the read cache before FastAPI's middleware and routing, when the cache holds
a current answer to that very request (same path and query, so the same validated parameters) and the bearer
token is valid with at least the role of the route that computed it; anything else goes the normal way, which
also gives the 401/403/422 problems (and the 500 of a cache that fails). On a hot read it saves most of the
per-request cost of the app, and the cache read does not block the event loop.

:meth:`ApiApp.add_early_route` lets a function answer its busiest uncached GET before FastAPI too (the traffic
history), when the query is a plain valid one; anything else goes the FastAPI way, with its problem documents.

:func:`database_query` runs a route's query from a coroutine route without blocking the event loop on the network
(PostgreSQL's connections of the loop's own pool); a small read of the embedded SQLite runs on the event loop (a
fraction of a millisecond, less than the hop to a worker thread costs), a long one in a worker thread (it must not
hold up other requests).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Awaitable, Callable, Mapping, Protocol

from fastapi import Depends, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from smartcity.extras import require

# The REST API functions are built with the api extra (the Swagger UI of the merged document); the modules the
# gateway and the ingest functions share with them (auth, problems) need only the runtime extra.
require("api", "swagger_ui")

from smartcity.api.auth import KeyRing, Principal, Role, caller_with_role, require_role, verify_token
from smartcity.api.caching import ReadCache, conditional_response, request_key
from smartcity.api.problems import (ProblemError, add_problem_schemas, handled_error, install_problem_handlers,
                                    problem_responses)
from smartcity.backends.cache import Cache
from smartcity.backends.database import Database
from smartcity.runtime.problems import problem_response
from smartcity.backends.documents import DocumentStore
from smartcity.settings import Settings

API_VERSION = "v1"
READ_ERRORS = problem_responses(400, 401, 403, 422, 503)
WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 503)

logger = logging.getLogger(__name__)

viewer = require_role(Role.viewer)
operator = require_role(Role.operator)
admin = require_role(Role.admin)


class ApiContext(Protocol):
    """What an API function needs of the runtime's context: settings and lazily opened backends."""

    settings: Settings

    @property
    def database(self) -> Database: ...

    @property
    def read_database(self) -> Database: ...

    @property
    def cache(self) -> Cache: ...

    @property
    def documents(self) -> DocumentStore: ...


def create_api_app(group: str, description: str, context: ApiContext) -> FastAPI:
    """A FastAPI app for ``/v1/<group>``: problem handlers, JWT keys, read cache, OpenAPI with problem schemas."""
    app = ApiApp(
        title=f"smartcity {group} API",
        version=API_VERSION,
        description=description,
        docs_url=None,
        redoc_url=None,
        openapi_url=f"/{API_VERSION}/{group}/openapi.json",
    )
    app.state.context = context
    app.state.keyring = KeyRing(context.settings)
    app.state.read_cache = None
    app.state.public_path = f"/{API_VERSION}/{group}"  # the gateway serves the group there too
    app.state.on_gateway = install_gateway_docs
    app.state.authorize = functools.partial(reader_refusal, app.state.keyring)  # asked before an async call
    install_problem_handlers(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = add_problem_schemas(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    # the streams whose descriptor asks for a listing in this group; imported here, as its routes need this module
    from smartcity.api.stream_routes import add_stream_routes

    add_stream_routes(app, group, dependencies=[Depends(viewer)], responses=READ_ERRORS)
    return app


def reader_refusal(keyring: KeyRing, headers: Mapping[str, str], path: str) -> Response | None:
    """The problem refusing a caller without a valid token of at least the viewer role (every API route needs
    one), or None: what the gateway asks before accepting an async call (each route still checks its own role)."""
    try:
        caller_with_role(keyring, headers.get("authorization"), Role.viewer)
    except ProblemError as error:
        return problem_response(error.status, error.detail, {e.field: e.reason for e in error.errors},
                                instance=path, headers=error.headers)
    return None


def install_gateway_docs(gateway: FastAPI, apps: Mapping[str, FastAPI]) -> None:
    """The gateway's hook: the merged OpenAPI document and docs page of the API functions it serves."""
    from smartcity.api.openapi import install_api_docs  # it imports this module

    install_api_docs(gateway, apps)


EarlyRoute = Callable[[Request], Awaitable[Response | None]]


class ApiApp(FastAPI):
    """An API function's app: it serves a GET straight from the read cache when its answer is there and the caller
    may see it, or by an early route (:meth:`add_early_route`), else as a FastAPI app."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.early_routes: dict[str, tuple[Role, EarlyRoute]] = {}

    def add_early_route(self, path: str, answer: EarlyRoute, role: Role = Role.viewer) -> None:
        """Answer a GET of ``path`` (the public path, without the root path) with ``answer`` before FastAPI, for a
        caller with a valid token of at least ``role``. ``answer`` gives None for any request it does not answer
        exactly as the FastAPI route would (an unusual or invalid query: the route then gives the problem); an error
        it raises other than a :class:`ProblemError` (a backend failing) is answered by the app's exception handlers
        at once, as the route's would be, without running its query a second time. The read cache is not asked for
        this path (its route answers uncached)."""
        self.early_routes[path] = (role, answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            request = Request(scope)
            early = self.early_routes.get(_route_path(scope)) if self.early_routes else None
            response = await (self._early(request, *early) if early else self._from_cache(request))
            if response is not None:
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def _early(self, request: Request, role: Role, answer: EarlyRoute) -> Response | None:
        caller = self._caller(request)
        if caller is None or caller.role.rank < role.rank:
            return None
        request.scope["app"] = self  # as Starlette sets it: the answer reaches the app's state through the request
        try:
            return await answer(request)
        except ProblemError:  # an invalid query: the route answers it, with its problem
            logger.debug("the early route of %s left the request to FastAPI", request.url.path, exc_info=True)
            return None
        except Exception as error:  # noqa: BLE001 - a backend failing: the route's answer, without asking it again
            return await handled_error(self, request, error)

    def _caller(self, request: Request) -> Principal | None:
        """The caller a valid bearer token names, or None (no token, or an invalid one: the route refuses it)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            return verify_token(self.state.keyring, token.strip())
        except ProblemError:
            return None

    async def _from_cache(self, request: Request) -> Response | None:
        caller = self._caller(request)
        if caller is None:
            return None
        try:
            cached = await _read_cache(self).lookup(request_key(request))
        except Exception:  # noqa: BLE001 - the cache failing: the normal way answers, with its problem document
            return None
        if cached is None or caller.role.rank < Role(cached.role).rank:
            return None
        return conditional_response(request, cached)


def read_cache_of(request: Request) -> ReadCache:
    """The app's read cache, over the context's cache backend (opened on first use)."""
    return _read_cache(request.app)


def _read_cache(app: FastAPI) -> ReadCache:
    if app.state.read_cache is None:
        app.state.read_cache = ReadCache(app.state.context.cache)
    return app.state.read_cache


def _route_path(scope: Scope) -> str:
    """The request's path below the app's root path (the OpenFaaS route's ``/function/<name>``)."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root) else path


async def database_query(database: Database, sql: str, params: Mapping[str, Any] | None, small: bool,
                         binary: bool = False) -> list[dict[str, Any]]:
    """The rows of ``sql`` from a coroutine route: awaited on the event loop (PostgreSQL's own connections of the
    loop, ``binary`` as :meth:`Database.query_async`; a small read of the embedded SQLite inline), or a long SQLite
    read in a worker thread."""
    if small or database.dialect != "sqlite":
        return await database.query_async(sql, params, binary)
    return await run_in_threadpool(database.query, sql, params)
