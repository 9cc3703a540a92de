"""An API function's early route checked against its FastAPI route: the same request answered both ways."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator


def api_app(gateway: Any, function: str) -> Any:
    """The app of one API function of the gateway (``api-traffic`` ...)."""
    return gateway.state.functions[function].app


@contextmanager
def early_route_answers(app: Any, path: str) -> Iterator[list[bool]]:
    """While inside: for each request to ``path``, whether the early route answered it (else FastAPI did)."""
    role, answer = app.early_routes[path]
    answered: list[bool] = []

    async def recording(request: Any) -> Any:
        try:
            response = await answer(request)
        except Exception:  # an invalid query: the FastAPI route gives the problem
            answered.append(False)
            raise
        answered.append(response is not None)
        return response

    app.early_routes[path] = (role, recording)
    try:
        yield answered
    finally:
        app.early_routes[path] = (role, answer)


@contextmanager
def without_early_route(app: Any, path: str) -> Iterator[None]:
    """While inside, FastAPI answers ``path`` (the early route is set aside)."""
    early = app.early_routes.pop(path)
    try:
        yield
    finally:
        app.early_routes[path] = early


def both_ways(client: Any, app: Any, path: str, params: dict[str, Any], headers: dict[str, str] | None = None
              ) -> tuple[Any, Any, bool]:
    """The answers to GET ``path`` with ``params`` by the early route and by FastAPI's, and whether the early
    route answered the first itself (it gives FastAPI what it does not answer exactly as it would)."""
    with early_route_answers(app, path) as answered:
        early = client.get(path, params=params, headers=headers)
    with without_early_route(app, path):
        route = client.get(path, params=params, headers=headers)
    return early, route, answered == [True]
