"""Errors of the REST API as ``application/problem+json`` (RFC 9457), each naming the field and the reason.

The document is the platform's one problem shape (:class:`smartcity.errors.Problem`, sent by
:mod:`smartcity.runtime.problems`); this module adds what is the API's own: the exception route code raises and
the FastAPI handlers.

Route code raises :class:`ProblemError` (or one of its helpers: :func:`bad_request`, :func:`not_found`,
:func:`conflict`); :func:`install_problem_handlers` turns it, FastAPI's request validation errors (422, one entry
per bad field), Starlette's own HTTP errors (404 for an unknown path, 405 ...), a backend out of reach (503 with
``Retry-After``) and anything unexpected (500, logged, no internals leaked) into one JSON shape.
:func:`problem_responses` documents them in the OpenAPI document.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any, Mapping, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from smartcity.errors import PROBLEM_MEDIA_TYPE, FieldError, Problem
from smartcity.runtime.outages import OUTAGE_ERRORS, is_outage
from smartcity.runtime.problems import http_exception_problem
from smartcity.runtime.problems import problem_response as runtime_problem_response

log = logging.getLogger(__name__)
OUTAGE_RETRY_AFTER_S = 5  # a 503's Retry-After: a restarted PostgreSQL or Redis is back within seconds


class ProblemError(Exception):
    """Raise from route code to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or []
        self.headers = dict(headers or {})


def field_problem(status: int, field: str, reason: str) -> ProblemError:
    """A problem about one field: the detail and the single error entry both name it."""
    return ProblemError(status, f"{field}: {reason}", [FieldError(field=field, reason=reason)])


def bad_request(field: str, reason: str) -> ProblemError:
    return field_problem(400, field, reason)


def not_found(what: str) -> ProblemError:
    return ProblemError(404, f"{what} does not exist")


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, detail)


def problem_response(
    request: Request, status: int, detail: str | None, errors: Sequence[FieldError] = (), headers: Mapping[str, str] | None = None
) -> Response:
    """The problem document of ``status`` about ``request`` (its path is the ``instance``)."""
    return runtime_problem_response(status, detail, errors, instance=request.url.path, headers=headers)


def validation_field_errors(exc: RequestValidationError) -> list[FieldError]:
    """FastAPI's validation errors as (field, reason): ``("query", "limit")`` becomes ``query.limit``."""
    errors = []
    for error in exc.errors():
        location = ".".join(str(part) for part in error.get("loc", ()))
        errors.append(FieldError(field=location or "request", reason=error.get("msg", "invalid value")))
    return errors


async def _on_problem(request: Request, exc: ProblemError) -> Response:
    return problem_response(request, exc.status, exc.detail, exc.errors, exc.headers)


async def _on_validation(request: Request, exc: RequestValidationError) -> Response:
    errors = validation_field_errors(exc)
    detail = "; ".join(f"{e.field}: {e.reason}" for e in errors)
    return problem_response(request, 422, detail, errors)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(request, 500, "internal error; it has been logged")


async def _on_outage(request: Request, exc: Exception) -> Response:
    """A backend out of reach (:func:`smartcity.runtime.outages.is_outage`: refused or lost connections, an empty
    pool) is a 503 the client may retry, logged in one line; any other error of those classes (a statement
    cancelled by its timeout) is unexpected."""
    if not is_outage(exc):
        return await _on_unexpected(request, exc)
    log.warning("%s %s: a backend is out of reach (%s: %s)", request.method, request.url.path,
                type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return problem_response(request, 503, "a backend of the API is out of reach; try again shortly",
                            headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)})


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem document."""
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, http_exception_problem)
    for outage in OUTAGE_ERRORS:
        app.add_exception_handler(outage, _on_outage)
    app.add_exception_handler(Exception, _on_unexpected)


async def handled_error(app: FastAPI, request: Request, exc: Exception) -> Response:
    """The answer ``app``'s exception handlers give ``exc`` (the handler of its nearest class), as when a route
    raises it: for code that answers before the routes (:meth:`smartcity.api.app.ApiApp.add_early_route`)."""
    handler = next(app.exception_handlers[kind] for kind in type(exc).__mro__ if kind in app.exception_handlers)
    return await handler(request, exc)


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, all problem documents."""
    return {status: {"description": HTTPStatus(status).phrase, "content": _problem_content()} for status in statuses}


def add_problem_schemas(openapi: dict[str, Any]) -> dict[str, Any]:
    """Put the Problem and FieldError schemas into an OpenAPI document's components (the responses refer to them)."""
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    return openapi
