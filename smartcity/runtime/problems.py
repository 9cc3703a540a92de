"""Problem documents (:func:`smartcity.errors.problem`) as HTTP responses: what the gateway, the function server,
ingest and the REST API send for a bad request, so that every door answers in one shape."""

from __future__ import annotations

from typing import Any, Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from smartcity.errors import PROBLEM_MEDIA_TYPE, FieldErrors, Problem, problem


def send_problem(document: Problem, headers: Mapping[str, str] | None = None) -> Response:
    """``document`` as an ``application/problem+json`` response with its status."""
    return Response(document.model_dump_json(), status_code=document.status, media_type=PROBLEM_MEDIA_TYPE,
                    headers=dict(headers or {}))


def problem_response(status: int, detail: str | None = None, errors: FieldErrors = (), *, instance: str | None = None,
                     headers: Mapping[str, str] | None = None, **extensions: Any) -> Response:
    """The problem+json response of ``status``, naming each bad field in ``errors``."""
    return send_problem(problem(status, detail, errors, instance=instance, **extensions), headers)


async def http_exception_problem(request: Request, exc: HTTPException) -> Response:
    """Starlette's own errors (404 for an unknown path, 405 for a method a route lacks) as problems."""
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(exc.status_code, detail, instance=request.url.path, headers=exc.headers)
