"""problem+json errors: every error of an API app is an RFC 9457 document naming the field and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Annotated

import pytest
from fastapi import Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from smartcity.api.app import WRITE_ERRORS, create_api_app
from smartcity.api.problems import bad_request, conflict, not_found
from smartcity.settings import Settings


@dataclass
class NoBackendContext:
    settings: Settings


class Thing(BaseModel):
    name: str = Field(min_length=1)
    size: int = Field(ge=0)


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> TestClient:
    app = create_api_app("test", "problems", NoBackendContext(Settings(secrets_dir=tmp_path_factory.mktemp("s"))))

    @app.get("/v1/test/items", responses=WRITE_ERRORS)
    def items(limit: Annotated[int, Query(ge=1, le=10)] = 5, kind: str = "any"):
        if kind == "missing":
            raise not_found("item 42")
        if kind == "taken":
            raise conflict("item 42 is resolved already")
        if kind == "odd":
            raise bad_request("query.kind", "odd is not a kind of item")
        return {"limit": limit}

    @app.post("/v1/test/things", responses=WRITE_ERRORS)
    def create(thing: Thing):
        return thing

    @app.get("/v1/test/broken")
    def broken():
        raise RuntimeError("secret internals")

    return TestClient(app, raise_server_exceptions=False)


def problem_of(response, status: int) -> dict:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"] == "about:blank"
    return problem


def test_a_query_parameter_out_of_bounds_is_a_422_naming_it(client):
    problem = problem_of(client.get("/v1/test/items", params={"limit": 99}), 422)
    assert problem["title"] == HTTPStatus(422).phrase
    assert problem["instance"] == "/v1/test/items"
    assert [e["field"] for e in problem["errors"]] == ["query.limit"]
    assert "less than or equal to 10" in problem["errors"][0]["reason"]


def test_every_bad_body_field_is_named(client):
    problem = problem_of(client.post("/v1/test/things", json={"name": "", "size": -1}), 422)
    fields = {e["field"]: e["reason"] for e in problem["errors"]}
    assert set(fields) == {"body.name", "body.size"}
    assert "at least 1 character" in fields["body.name"]
    assert "greater than or equal to 0" in fields["body.size"]


def test_a_body_that_is_not_json_is_a_422(client):
    response = client.post("/v1/test/things", content=b"{not json", headers={"content-type": "application/json"})
    problem = problem_of(response, 422)
    assert problem["errors"][0]["field"].startswith("body")


@pytest.mark.parametrize(
    "kind, status, detail",
    [
        ("missing", 404, "item 42 does not exist"),
        ("taken", 409, "item 42 is resolved already"),
        ("odd", 400, "query.kind: odd is not a kind of item"),
    ],
)
def test_route_errors_are_problems(client, kind, status, detail):
    assert problem_of(client.get("/v1/test/items", params={"kind": kind}), status)["detail"] == detail


def test_an_unknown_path_and_a_wrong_method_are_problems(client):
    problem_of(client.get("/v1/test/nowhere"), 404)
    problem_of(client.delete("/v1/test/items"), 405)


def test_an_unexpected_error_is_a_500_problem_that_leaks_nothing(client):
    problem = problem_of(client.get("/v1/test/broken"), 500)
    assert "secret" not in problem["detail"]


def test_the_openapi_document_describes_errors_as_problems(client):
    document = client.app.openapi()
    assert {"Problem", "FieldError"} <= set(document["components"]["schemas"])
    responses = document["paths"]["/v1/test/things"]["post"]["responses"]
    assert set(responses["422"]["content"]) == {"application/problem+json"}
    assert responses["409"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_a_backend_out_of_reach_is_a_503_to_retry_and_a_cancelled_statement_a_500():
    psycopg = pytest.importorskip("psycopg")
    app = create_api_app("test", "outages", NoBackendContext(Settings()))

    @app.get("/v1/test/refused")
    def refused():
        raise psycopg.OperationalError("connection to server at 127.0.0.1 refused")

    @app.get("/v1/test/cancelled")
    def cancelled():
        raise psycopg.errors.QueryCanceled("canceling statement due to statement timeout")

    client = TestClient(app, raise_server_exceptions=False)
    answer = client.get("/v1/test/refused")
    problem = problem_of(answer, 503)
    assert answer.headers["retry-after"] == "5" and "127.0.0.1" not in answer.text
    assert "out of reach" in problem["detail"]
    assert "statement" not in problem_of(client.get("/v1/test/cancelled"), 500)["detail"]
