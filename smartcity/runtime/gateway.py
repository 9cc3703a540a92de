"""The local gateway: OpenFaaS's routes over the functions of ``stack.yml``, in one ASGI app.

=================================  ===================================================================
``/function/<name>[/path]``        invoke (any method; the function's app sees ``root_path``)
``/async-function/<name>[/path]``  POST: 202 with ``X-Call-Id`` at once; the function's response is then
                                   POSTed to ``X-Callback-Url`` with ``X-Function-Status``,
                                   ``X-Function-Name``, ``X-Duration-Seconds``, ``X-Call-Id``
``/system/functions``              the functions, as OpenFaaS's ``FunctionStatus`` list
``/system/function/<name>``        one of them
``/healthz``, ``/metrics``         liveness; Prometheus metrics under the OpenFaaS gateway's names
``/v1/<group>/...``                the API function ``api-<group>`` (its routes carry their full public
                                   path), with the merged document at ``/v1/openapi.json``
=================================  ===================================================================

:func:`build_gateway` loads the functions and returns the app (a FastAPI app, so more routes can be added);
``app.state.function_apps`` maps each function's name to its ASGI app.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import httpx
from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartcity.runtime.context import Backends
from smartcity.runtime.loader import LoadedFunction, load_stack
from smartcity.runtime.metrics import CONTENT_TYPE_LATEST, Metrics
from smartcity.runtime.server import ASGIApp, Lifespan, function_app, json_response
from smartcity.settings import Settings, get_settings

logger = logging.getLogger(__name__)
API_FUNCTION_PREFIX = "api-"
NAMESPACE = "openfaas-fn"
ENV_PROCESS = "python -m smartcity.runtime.entrypoint"
# Headers that belong to one hop, not to the request the function sees or the callback it sends.
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


def function_not_found(name: str, known: Iterable[str]) -> Response:
    """The 404 for a function the gateway does not serve, listing those it does."""
    return json_response(404, {"error": f"function {name!r} not found", "functions": sorted(known)})


class FunctionRoutes:
    """Dispatches ``<prefix>/<name>[/path]`` to the function's app, counting the call in the metrics."""

    def __init__(self, apps: dict[str, ASGIApp], metrics: Metrics) -> None:
        self.apps = apps
        self.metrics = metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        name, _, _ = get_route_path(scope).lstrip("/").partition("/")
        if name not in self.apps:
            await function_not_found(name, self.apps)(scope, receive, send)
            return
        root_path = scope.get("root_path", "") + f"/{name}"
        child = {**scope, "root_path": root_path}
        if scope["path"] == root_path:  # /function/<name> is the function's "/"
            child["path"] = root_path + "/"
            child["raw_path"] = child["path"].encode()
        await invoke(self.apps[name], name, self.metrics, child, receive, send)


async def invoke(app: ASGIApp, name: str, metrics: Metrics, scope: dict, receive: Callable, send: Callable) -> None:
    """Call a function's app, recording its status code and duration."""
    status = 500

    async def capture(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        await send(message)

    metrics.start(name)
    started = time.perf_counter()
    try:
        await app(scope, receive, capture)
    finally:
        metrics.observe(name, status, time.perf_counter() - started)


class AsyncRoutes:
    """``/async-function/<name>``: accept now (202), invoke in the background, POST the result to the callback."""

    def __init__(self, gateway: FastAPI, names: Sequence[str]) -> None:
        self.gateway = gateway
        self.names = set(names)
        self.tasks: set[asyncio.Task] = set()
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, kind: str) -> httpx.AsyncClient:
        if kind not in self._clients:
            self._clients[kind] = (
                # A function that raises has answered 500 (Starlette sends it, then re-raises): that 500 is the
                # result the callback gets, as from OpenFaaS, rather than an error that ends the call unreported.
                httpx.AsyncClient(transport=httpx.ASGITransport(app=self.gateway, raise_app_exceptions=False),
                                  base_url="http://gateway", timeout=None)
                if kind == "internal" else httpx.AsyncClient(timeout=30)
            )
        return self._clients[kind]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        request = Request(scope, receive)
        name, _, rest = get_route_path(scope).lstrip("/").partition("/")
        if name not in self.names:
            response = function_not_found(name, self.names)
        elif request.method != "POST":
            response = json_response(405, {"error": "an async invocation is a POST"})
        else:
            call_id = request.headers.get("x-call-id") or str(uuid.uuid4())
            start_ns = time.time_ns()
            headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS]
            path = f"/function/{name}/{rest}" + (f"?{request.url.query}" if request.url.query else "")
            job = self._run(name, path, headers, await request.body(), call_id, start_ns, request.headers.get("x-callback-url"))
            task = asyncio.create_task(job)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            response = Response(status_code=202, headers={"X-Call-Id": call_id, "X-Start-Time": str(start_ns)})
        await response(scope, receive, send)

    async def _run(self, name: str, path: str, headers: list, body: bytes, call_id: str, start_ns: int,
                   callback_url: str | None) -> None:
        started = time.perf_counter()
        result = await self._client("internal").post(path, headers=headers + [("x-call-id", call_id)], content=body)
        duration = time.perf_counter() - started
        logger.info("async call %s to %s: %s in %.3fs", call_id, name, result.status_code, duration)
        if not callback_url:
            return
        callback_headers = {k: v for k, v in result.headers.items() if k.lower() not in HOP_HEADERS}
        callback_headers.update({
            "X-Call-Id": call_id,
            "X-Function-Name": name,
            "X-Function-Status": str(result.status_code),
            "X-Duration-Seconds": f"{duration:f}",
            "X-Start-Time": str(start_ns),
        })
        try:
            await self._client("callback").post(callback_url, headers=callback_headers, content=result.content)
        except httpx.HTTPError as error:
            logger.error("async call %s: callback to %s failed: %s", call_id, callback_url, error)

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks))
        for client in self._clients.values():
            await client.aclose()


def function_status(function: LoadedFunction, metrics: Metrics) -> dict[str, Any]:
    """A function as OpenFaaS's ``GET /system/functions`` describes it."""
    entry = function.spec.entry
    return {
        "name": function.name,
        "image": entry.image,
        "namespace": entry.namespace or NAMESPACE,
        "envProcess": entry.fprocess or ENV_PROCESS,
        "envVars": function.spec.environment,
        "labels": entry.labels,
        "annotations": entry.annotations,
        "secrets": entry.secrets,
        "limits": entry.limits.model_dump(exclude_none=True) if entry.limits else None,
        "requests": entry.requests.model_dump(exclude_none=True) if entry.requests else None,
        "readOnlyRootFilesystem": entry.readonly_root_filesystem,
        "replicas": 1,
        "availableReplicas": 1,
        "invocationCount": metrics.invocation_count(function.name),
    }


def _mount_api_functions(gateway: FastAPI, functions: Sequence[LoadedFunction], apps: dict[str, ASGIApp],
                         metrics: Metrics) -> None:
    """``api-<group>`` answers at ``/v1/<group>`` too; the merged OpenAPI document describes them all."""
    api = {f.name: f.app for f in functions if f.name.startswith(API_FUNCTION_PREFIX) and isinstance(f.app, FastAPI)}
    if not api:
        return
    from smartcity.api.app import API_VERSION
    from smartcity.api.openapi import install_api_docs

    install_api_docs(gateway, api)
    for name in api:
        group = name[len(API_FUNCTION_PREFIX):]
        public_route = PublicApiRoute(apps[name], name, metrics)
        gateway.mount(f"/{API_VERSION}/{group}", public_route)
        # A mount matches only below its prefix: the group's root itself (GET /v1/incidents) is a route of its own.
        gateway.router.routes.append(Route(f"/{API_VERSION}/{group}", public_route))


class PublicApiRoute:
    """``/v1/<group>/...`` to ``api-<group>``: its routes carry their full public path, so the app runs at the root."""

    def __init__(self, app: ASGIApp, name: str, metrics: Metrics) -> None:
        self.app, self.name, self.metrics = app, name, metrics

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        await invoke(self.app, self.name, self.metrics, {**scope, "root_path": ""}, receive, send)


def create_gateway(functions: Sequence[LoadedFunction], backends: Backends | None = None,
                   metrics: Metrics | None = None) -> FastAPI:
    """The gateway over already loaded functions; on shutdown it closes ``backends``."""
    metrics = metrics or Metrics()
    apps = {function.name: function_app(function) for function in functions}
    by_name = {function.name: function for function in functions}
    lifespans = [Lifespan(function.app) for function in functions if function.app is not None]

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for sub in lifespans:
            await sub.startup()
        yield
        await async_routes.close()
        for sub in reversed(lifespans):
            await sub.shutdown()
        if backends is not None:
            backends.close()

    gateway = FastAPI(title="smartcity gateway", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    async_routes = AsyncRoutes(gateway, list(apps))
    for name in apps:
        metrics.register(name)
    gateway.state.functions = by_name
    gateway.state.function_apps = apps
    gateway.state.metrics = metrics

    @gateway.get("/healthz")
    def healthz() -> Response:
        return Response("OK", media_type="text/plain")

    @gateway.get("/metrics")
    def prometheus() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @gateway.get("/system/functions")
    def system_functions() -> list[dict[str, Any]]:
        return [function_status(function, metrics) for function in functions]

    @gateway.get("/system/function/{name}")
    def system_function(name: str) -> Response:
        if name not in by_name:
            return function_not_found(name, by_name)
        return json_response(200, function_status(by_name[name], metrics))

    gateway.mount("/function", FunctionRoutes(apps, metrics))
    gateway.mount("/async-function", async_routes)
    _mount_api_functions(gateway, functions, apps, metrics)
    return gateway


def build_gateway(stack_file: Path, settings: Settings, names: Sequence[str] = ()) -> FastAPI:
    """Load every function of ``stack_file`` (or those named) and return the gateway app serving them."""
    backends = Backends()
    return create_gateway(load_stack(stack_file, settings, names, backends), backends)


def gateway_from_settings() -> FastAPI:
    """The gateway the settings describe (``SMARTCITY_STACK_FILE``, ``SMARTCITY_GATEWAY_FUNCTIONS``): the app
    factory each worker process of ``smartcity functions gateway --workers N`` builds for itself."""
    settings = get_settings()
    return build_gateway(settings.stack_file, settings, gateway_function_names(settings))


def gateway_function_names(settings: Settings) -> list[str]:
    """The functions ``SMARTCITY_GATEWAY_FUNCTIONS`` names (comma-separated); none named means all."""
    return [name.strip() for name in settings.gateway_functions.split(",") if name.strip()]
