"""The gateway's internal listener: ``/healthz`` and ``/metrics`` on a port of their own, and nothing else there.

Neither asks for credentials (the kubelet's probes and Prometheus's scrapes carry none), so they are kept off the
public port: the functions and ``/system`` answer on ``gateway_port``, which a Service, route or published port
exposes; ``/healthz`` and ``/metrics`` on ``gateway_internal_port`` (at ``internal_host``), which none exposes. On
the public port they do not exist (404), and the internal port knows no other path (404 for ``/function/...``).
``gateway_internal_port`` 0 serves both on the public port, as before, for a setup with one port.

Both ports are sockets of the same uvicorn server (:func:`serve`; of each worker process with ``--workers``, as
uvicorn hands its workers every socket it bound): the gateway's app tells them apart by the local port a request
came in on (``scope["server"]``), so ``/healthz`` turns 503 in the process that drains, and ``/metrics`` sums
what every worker counted (:func:`smartcity.runtime.metrics.shared_across_processes`), whichever answers it.
"""

from __future__ import annotations

import socket
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartcity.errors import ConfigurationError
from smartcity.runtime.draining import Drain
from smartcity.runtime.metrics import CONTENT_TYPE_LATEST, Metrics
from smartcity.runtime.problems import http_exception_problem, problem_response
from smartcity.settings import Settings

INTERNAL_PATHS = ("/healthz", "/metrics")


def internal_routes(metrics: Metrics, drain: Drain | None) -> list[Route]:
    """``/healthz`` (503 once ``drain`` is draining: :mod:`.draining`) and ``/metrics`` (Prometheus's text format)."""

    def healthz(request: Request) -> Response:
        if drain is not None and drain.draining.is_set():
            return problem_response(503, "draining: shutting down, send new requests elsewhere", instance="/healthz")
        return Response("OK", media_type="text/plain")

    def prometheus(request: Request) -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", prometheus, methods=["GET"])]


def internal_app(metrics: Metrics, drain: Drain | None) -> Starlette:
    """The app of the internal port: :func:`internal_routes`, any other path a 404 problem."""
    return Starlette(routes=internal_routes(metrics, drain), exception_handlers={HTTPException: http_exception_problem})


def health_port(settings: Settings) -> int:
    """The port where the gateway serves ``/healthz`` and ``/metrics``: its internal one, else (0) its public one."""
    return settings.gateway_internal_port or settings.gateway_port


def local_port(scope: dict) -> int | None:
    """The local port a request came in on (uvicorn's ``scope["server"]``), if known."""
    server = scope.get("server")
    return server[1] if server else None


def sockets(config: uvicorn.Config, internal_host: str, internal_port: int) -> list[socket.socket]:
    """The listening sockets of ``config``'s address and, unless ``internal_port`` is 0, of the internal one (uvicorn
    binds and logs each)."""
    if internal_port and internal_port == config.port:
        raise ConfigurationError("SMARTCITY_GATEWAY_INTERNAL_PORT", f"is the public port {config.port}: give it another (or 0)")
    bound = [config.bind_socket()]
    if internal_port:
        bound.append(uvicorn.Config(None, host=internal_host, port=internal_port, log_config=None).bind_socket())
    return bound


def serve(app: Any, *, host: str, port: int, internal_host: str, internal_port: int, workers: int = 1,
          **options: Any) -> None:
    """``uvicorn.run`` with the internal port's socket besides: ``app`` (an app, or with ``workers`` > 1 an import
    string) on ``host:port`` and on ``internal_host:internal_port``."""
    config = uvicorn.Config(app, host=host, port=port, workers=workers, log_config=None, **options)
    bound = sockets(config, internal_host, internal_port)
    if config.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=bound).run()
    else:
        uvicorn.Server(config).run(sockets=bound)
