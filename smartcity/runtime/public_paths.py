"""The gateway's app, which hands a request under a function's public path straight to that function.

The API functions answer at public paths (``/v1/<group>``). Routed as Starlette mounts, each such request went
through the gateway's whole FastAPI stack (its middleware, exception handlers and route matching) before the
function's own FastAPI app did the same again: about as much time as a cached answer takes. Here the gateway
matches the few public prefixes first and calls the function's route (wrapped in the request context) directly;
every other path, and the lifespan, goes through FastAPI as before. A request that came in on the internal port
goes to the internal listener's app alone (:mod:`smartcity.runtime.internal`).
"""

from __future__ import annotations

from typing import Callable

from fastapi import FastAPI
from starlette._utils import get_route_path

from smartcity.runtime.internal import local_port
from smartcity.runtime.request_context import RequestContext
from smartcity.runtime.server import ASGIApp


class GatewayApp(FastAPI):
    """A FastAPI app with public paths served ahead of its routes: ``<path>`` and everything below it; and with
    another app for whatever comes in on an internal port."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.public_paths: list[tuple[str, str, ASGIApp]] = []
        self.internal: tuple[int, ASGIApp] | None = None

    def set_internal(self, port: int, app: ASGIApp) -> None:
        """Serve what comes in on local port ``port`` with ``app`` (in a request context of its own), and only so."""
        self.internal = (port, RequestContext(app))

    def add_public_path(self, path: str, app: ASGIApp) -> None:
        """Serve ``path`` and what lies below it with ``app`` (in a request context of its own)."""
        path = path.rstrip("/")
        self.public_paths.append((path, path + "/", RequestContext(app)))

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "http":
            if self.internal is not None and local_port(scope) == self.internal[0]:
                await self.internal[1](scope, receive, send)
                return
            route_path = get_route_path(scope)
            for path, below, app in self.public_paths:
                if route_path == path or route_path.startswith(below):
                    await app(scope, receive, send)
                    return
        await super().__call__(scope, receive, send)
