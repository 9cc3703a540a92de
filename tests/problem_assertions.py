"""The one error shape every door answers with (RFC 9457 problem+json with a ``{field, reason}`` list), checked."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from smartcity.errors import PROBLEM_MEDIA_TYPE, Problem


def problem_fields(document: dict[str, Any], status: int) -> dict[str, str]:
    """A problem document's ``{field: reason}``, after checking it is a problem of ``status`` with a detail."""
    problem = Problem.model_validate(document)
    assert (problem.status, problem.title) == (status, HTTPStatus(status).phrase), document
    assert problem.detail, document
    return {error.field: error.reason for error in problem.errors}


def answered_problem(response: Any, status: int) -> dict[str, str]:
    """The ``{field: reason}`` of an HTTP response that must be a problem+json of ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == PROBLEM_MEDIA_TYPE, response.headers
    return problem_fields(response.json(), status)
