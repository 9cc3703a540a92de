"""The local gateway: OpenFaaS's routes over the functions of ``stack.yml``, in one ASGI app.

=================================  ===================================================================
``/function/<name>[/path]``        invoke (any method; the function's app sees ``root_path``)
``/async-function/<name>[/path]``  POST: 202 with ``X-Call-Id`` at once; the function's response is then
                                   POSTed to ``X-Callback-Url`` with ``X-Function-Status``,
                                   ``X-Function-Name``, ``X-Duration-Seconds``, ``X-Call-Id``
``/system/functions``              the functions, as OpenFaaS's ``FunctionStatus`` list (admin JWT)
``/system/function/<name>``        one of them (admin JWT)
``/healthz``, ``/metrics``         readiness (503 once draining on SIGTERM: :mod:`.draining`); Prometheus metrics under
                                   the OpenFaaS gateway's names. No credentials: on the internal port only
                                   (``gateway_internal_port``, :mod:`.internal`; 404 on the public one), docs/security.md
``<public path>/...``              a function app that declares ``app.state.public_path`` (the API
                                   functions: ``/v1/<group>``; their routes carry their full public path)
=================================  ===================================================================

A function app declaring a public path may also set ``app.state.on_gateway``, a callable the gateway calls once
with itself and every app sharing that callable (the API functions install their merged OpenAPI document so):
the gateway knows no layer above the runtime.

Every error it answers is a problem document (:mod:`smartcity.runtime.problems`): 404 for an unknown function or
path, 405 for a method a route lacks, 400 for an ``X-Callback-Url`` that :mod:`smartcity.runtime.callbacks`
refuses, 413 for a body over ``max_body_bytes`` (declared by ``Content-Length``, or counted when the body comes
chunked); 404 too for a function marked internal, 401/403 for ``/system`` without an admin token, 429 over a
caller's rate, 401/403 without a token of the role a function's ``smartcity.io/caller-role`` names, 504 past
the time limit (:mod:`smartcity.runtime.guard`). A function app may set
``app.state.authorize`` (headers, path -> refusal or None): the ingest functions' credentials, asked before an
async call is accepted.

:func:`build_gateway` loads the functions and returns the app (a FastAPI app, so more routes can be added);
``app.state.function_apps`` maps each function's name to its ASGI app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from smartcity.runtime.admission import MAX_BODY_BYTES, admit_body, function_not_found
from smartcity.runtime.async_calls import AsyncRoutes
from smartcity.runtime.context import Backends
from smartcity.runtime.draining import Drain
from smartcity.runtime.guard import GatewayGuard, timed_out
from smartcity.runtime.internal import internal_app, internal_routes
from smartcity.runtime.loader import LoadedFunction, load_stack
from smartcity.runtime.metrics import Metrics
from smartcity.runtime.problems import http_exception_problem
from smartcity.runtime.production import refuse_unsafe_production
from smartcity.runtime.public_paths import GatewayApp
from smartcity.runtime.request_context import RequestContext
from smartcity.runtime.server import ASGIApp, Lifespan, function_app, json_response
from smartcity.settings import Settings, get_settings

logger = logging.getLogger(__name__)
NAMESPACE = "openfaas-fn"
ENV_PROCESS = "python -m smartcity.runtime.entrypoint"


class FunctionRoutes:
    """Dispatches ``<prefix>/<name>[/path]`` to the function's app, counting the call in the metrics."""

    def __init__(self, apps: dict[str, ASGIApp], metrics: Metrics, max_body_bytes: int = MAX_BODY_BYTES,
                 guard: GatewayGuard | None = None) -> None:
        self.apps = apps
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.guard = guard or GatewayGuard()
        self.public = {name: app for name, app in apps.items() if name not in self.guard.internal}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        name, _, _ = get_route_path(scope).lstrip("/").partition("/")
        refusal = function_not_found(name, self.public, scope["path"]) if name not in self.public else None
        if refusal is None:
            refusal = await self.guard.rate_refusal(scope)
        if refusal is None:
            refusal = self.guard.caller_refusal(name, scope)
        if refusal is None:
            refusal, receive = await admit_body(scope, receive, self.max_body_bytes)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        root_path = scope.get("root_path", "") + f"/{name}"
        child = {**scope, "root_path": root_path}
        if scope["path"] == root_path:  # /function/<name> is the function's "/"
            child["path"] = root_path + "/"
            child["raw_path"] = child["path"].encode()
        await invoke(self.apps[name], name, self.metrics, child, receive, send, self.guard)


async def invoke(app: ASGIApp, name: str, metrics: Metrics, scope: dict, receive: Callable, send: Callable,
                 guard: GatewayGuard) -> None:
    """Call a function's app within the guard's time limit (504 past it), recording its status and duration."""
    status = 500
    answering = asyncio.Event()

    async def capture(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            answering.set()
        await send(message)

    metrics.start(name)
    started = time.perf_counter()
    try:
        if not await guard.within_time(app(scope, receive, capture), answering):
            status = 504
            await timed_out(name, guard.timeout_s, scope["path"])(scope, receive, send)
    finally:
        metrics.observe(name, status, time.perf_counter() - started)


def function_status(function: LoadedFunction, metrics: Metrics, available: bool) -> dict[str, Any]:
    """A function as OpenFaaS's ``GET /system/functions`` describes it, without its environment's values or its
    secrets' names. Its replicas are its instances in this gateway process: one (loaded with the gateway, or the
    gateway would not have started), available once the gateway's startup has run its lifespan."""
    entry = function.spec.entry
    return {
        "name": function.name,
        "image": entry.image,
        "namespace": entry.namespace or NAMESPACE,
        "envProcess": entry.fprocess or ENV_PROCESS,
        "labels": entry.labels,
        "annotations": entry.annotations,
        "limits": entry.limits.model_dump(exclude_none=True) if entry.limits else None,
        "requests": entry.requests.model_dump(exclude_none=True) if entry.requests else None,
        "readOnlyRootFilesystem": entry.readonly_root_filesystem,
        "replicas": 1,
        "availableReplicas": 1 if available else 0,
        "invocationCount": metrics.invocation_count(function.name),
    }


def public_path_of(app: ASGIApp | None) -> str | None:
    """The public path a function app declares (``app.state.public_path``), if any."""
    return getattr(getattr(app, "state", None), "public_path", None)


def _mount_public_apps(gateway: GatewayApp, functions: Sequence[LoadedFunction], apps: dict[str, ASGIApp],
                       metrics: Metrics, max_body_bytes: int, guard: GatewayGuard) -> None:
    """A function app that declares a public path answers there too; each ``on_gateway`` hook runs once."""
    public = {f.name: f.app for f in functions if public_path_of(f.app)}
    hooks: dict[Callable[[FastAPI, Mapping[str, Any]], None], dict[str, Any]] = {}
    for name, app in public.items():
        hook = getattr(app.state, "on_gateway", None)
        if hook is not None:
            hooks.setdefault(hook, {})[name] = app
    for hook, sharing in hooks.items():
        hook(gateway, sharing)
    for name, app in public.items():
        gateway.add_public_path(public_path_of(app), PublicRoute(apps[name], name, metrics, max_body_bytes, guard))


class PublicRoute:
    """``<public path>/...`` to the function that declares it: its routes carry their full public path, so the app
    runs at the root."""

    def __init__(self, app: ASGIApp, name: str, metrics: Metrics, max_body_bytes: int = MAX_BODY_BYTES,
                 guard: GatewayGuard | None = None) -> None:
        self.app, self.name, self.metrics, self.max_body_bytes = app, name, metrics, max_body_bytes
        self.guard = guard or GatewayGuard()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        refusal = await self.guard.rate_refusal(scope)
        if refusal is None:
            refusal, receive = await admit_body(scope, receive, self.max_body_bytes)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await invoke(self.app, self.name, self.metrics, {**scope, "root_path": ""}, receive, send, self.guard)


def create_gateway(functions: Sequence[LoadedFunction], backends: Backends | None = None,
                   metrics: Metrics | None = None, max_body_bytes: int = MAX_BODY_BYTES,
                   callback_allowed_hosts: str = "", callback_allow_private: bool = False,
                   guard: GatewayGuard | None = None, drain: Drain | None = None, internal_port: int = 0) -> FastAPI:
    """The gateway over already loaded functions; on shutdown it closes ``backends``. ``drain``: served in a
    process's main thread, SIGTERM turns ``/healthz`` to 503 for its delay before uvicorn drains. A request body over
    ``max_body_bytes`` is refused (413) before a function sees it; async calls call back only to the hosts of
    ``callback_allowed_hosts``, at public addresses unless ``callback_allow_private``. ``guard``: internal
    functions, the admin check, rate and time limits (none given: the functions' internal marks only, and
    ``/system`` shut). ``internal_port``: ``/healthz`` and ``/metrics`` answer on that local port alone, and nothing
    else does (0: on the gateway's one port)."""
    metrics = metrics or Metrics()
    guard = guard or GatewayGuard.for_functions(functions)
    started = asyncio.Event()
    apps = {function.name: function_app(function) for function in functions}
    by_name = {function.name: function for function in functions}
    lifespans = [Lifespan(function.app) for function in functions if function.app is not None]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for sub in lifespans:
            await sub.startup()
        if drain is not None:
            drain.install()
        started.set()
        yield
        started.clear()
        await async_routes.close()
        await guard.close()
        for sub in reversed(lifespans):
            await sub.shutdown()
        if backends is not None:
            backends.close()

    gateway = GatewayApp(title="smartcity gateway", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    gateway.add_exception_handler(HTTPException, http_exception_problem)
    gateway.add_middleware(RequestContext)  # X-Request-Id and the W3C trace of every request, in its log lines
    function_routes = FunctionRoutes(apps, metrics, max_body_bytes, guard)
    async_routes = AsyncRoutes(gateway, function_routes.public, max_body_bytes, callback_allowed_hosts,
                               callback_allow_private, guard)
    for name in apps:
        metrics.register(name)
    gateway.state.functions = by_name
    gateway.state.function_apps = apps
    gateway.state.metrics = metrics

    if internal_port:
        gateway.set_internal(internal_port, internal_app(metrics, drain))
    else:
        gateway.router.routes.extend(internal_routes(metrics, drain))

    @gateway.get("/system/functions")
    def system_functions(request: Request) -> Response:
        refusal = guard.admin_refusal(request)
        return refusal or json_response(200, [function_status(f, metrics, started.is_set()) for f in functions])

    @gateway.get("/system/function/{name}")
    def system_function(name: str, request: Request) -> Response:
        refusal = guard.admin_refusal(request)
        if refusal is None and name not in by_name:
            refusal = function_not_found(name, by_name, f"/system/function/{name}")
        return refusal or json_response(200, function_status(by_name[name], metrics, started.is_set()))

    gateway.mount("/function", function_routes)
    gateway.mount("/async-function", async_routes)
    _mount_public_apps(gateway, functions, apps, metrics, max_body_bytes, guard)
    return gateway


def build_gateway(stack_file: Path, settings: Settings, names: Sequence[str] = ()) -> FastAPI:
    """Load every function of ``stack_file`` (or those named) and return the gateway app serving them, refusing
    bodies over ``settings.gateway_max_body_bytes`` and callbacks the ``callback_*`` settings do not allow, with
    ``/healthz`` and ``/metrics`` on ``settings.gateway_internal_port``."""
    refuse_unsafe_production(settings)
    access_log(settings.gateway_access_log)
    backends = Backends()
    functions = load_stack(stack_file, settings, names, backends)
    return create_gateway(functions, backends,
                          max_body_bytes=settings.gateway_max_body_bytes,
                          callback_allowed_hosts=settings.callback_allowed_hosts,
                          callback_allow_private=settings.callback_allow_private,
                          guard=GatewayGuard.for_functions(functions, settings),
                          drain=Drain(settings.gateway_drain_delay_s),
                          internal_port=settings.gateway_internal_port)


def access_log(on: bool) -> None:
    """uvicorn's line per request on or off (``SMARTCITY_GATEWAY_ACCESS_LOG``): formatting and writing it takes
    about 50 us, as long as the gateway's whole dispatch of a cached answer."""
    logging.getLogger("uvicorn.access").setLevel(logging.NOTSET if on else logging.WARNING)


def gateway_from_settings() -> FastAPI:
    """The gateway the settings describe (``SMARTCITY_STACK_FILE``, ``SMARTCITY_GATEWAY_FUNCTIONS``): the app
    factory each worker process of ``smartcity functions gateway --workers N`` builds for itself; each worker logs
    (and ships its log lines) as a one-process gateway does."""
    from smartcity.runtime import logship

    settings = get_settings()
    logship.configure(settings, "gateway")
    return build_gateway(settings.stack_file, settings, gateway_function_names(settings))


def gateway_function_names(settings: Settings) -> list[str]:
    """The functions ``SMARTCITY_GATEWAY_FUNCTIONS`` names (comma-separated); none named means all."""
    return [name.strip() for name in settings.gateway_functions.split(",") if name.strip()]
