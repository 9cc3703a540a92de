"""Errors the platform raises on purpose, each naming what is wrong and where, and the one shape every door
answers a bad request with: an RFC 9457 problem document (``application/problem+json``) whose ``errors`` list
names each bad field and the reason.

:func:`problem` builds it; the HTTP doors send it with :func:`smartcity.runtime.problems.problem_response`
(the gateway, the function server, ingest) or through :mod:`smartcity.api.problems` (the REST API), and the Kafka
trigger puts the same document in a dead letter's ``knativeerrordata``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ConfigurationError(Exception):
    """A setting is wrong: unknown URL scheme, unreachable host, missing secret file. Names the setting."""

    def __init__(self, setting: str, reason: str) -> None:
        self.setting = setting
        self.reason = reason
        super().__init__(f"{setting}: {reason}")


class FieldError(BaseModel):
    """One bad input: where it is (``query.limit``, ``header.ce-type``, ``[2].speed``) and why it is refused."""

    field: str = Field(description="Where the bad value is: location and dotted path, e.g. query.limit.")
    reason: str = Field(description="Why it is refused.")


class Problem(BaseModel):
    """An RFC 9457 problem document. Extension members (ingest's ``accepted`` and ``ids``, a failed function's
    ``function``) are allowed, as the RFC allows them."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(default="about:blank", description="A URI naming the kind of problem.")
    title: str = Field(description="Short summary of the kind of problem (the HTTP reason phrase).")
    status: int = Field(description="The HTTP status code.")
    detail: str | None = Field(default=None, description="What went wrong in this occurrence.")
    instance: str | None = Field(default=None, description="The request path that went wrong.")
    errors: list[FieldError] = Field(default_factory=list, description="One entry per bad field.")


FieldErrors = Mapping[str, str] | Iterable[FieldError]


def field_errors(errors: FieldErrors) -> list[FieldError]:
    """``{field: reason}`` or field errors, as a list of field errors."""
    if isinstance(errors, Mapping):
        return [FieldError(field=name, reason=reason) for name, reason in errors.items()]
    return list(errors)


def problem(status: int, detail: str | None = None, errors: FieldErrors = (), *, instance: str | None = None,
            **extensions: Any) -> Problem:
    """The problem document of ``status`` (titled by its reason phrase), naming each bad field in ``errors``."""
    return Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=instance,
                   errors=field_errors(errors), **extensions)
