"""The gateway app serves a function's public path (its root and below) straight from the function's route, in a
request context; other paths, near misses included, go through its FastAPI routes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from starlette.responses import JSONResponse

from smartcity.runtime.public_paths import GatewayApp


def echo(name: str):
    async def app(scope, receive, send):
        await JSONResponse({"app": name, "path": scope["path"]})(scope, receive, send)

    return app


def gateway() -> GatewayApp:
    app = GatewayApp()
    app.add_public_path("/v1/traffic/", echo("traffic"))
    app.add_public_path("/v1/incidents", echo("incidents"))

    @app.get("/v1/trafficking")
    def routed() -> dict:
        return {"app": "fastapi"}

    return app


def test_a_public_path_and_what_lies_below_it_reach_its_function_with_a_request_id():
    client = TestClient(gateway())
    for path, name in (("/v1/traffic", "traffic"), ("/v1/traffic/segments", "traffic"),
                       ("/v1/incidents", "incidents"), ("/v1/incidents/a/b", "incidents")):
        response = client.get(path, headers={"X-Request-Id": "r-1"})
        assert response.json() == {"app": name, "path": path}
        assert response.headers["x-request-id"] == "r-1" and response.headers["traceresponse"]


def test_other_paths_and_near_misses_go_through_the_fastapi_routes():
    client = TestClient(gateway())
    assert client.get("/v1/trafficking").json() == {"app": "fastapi"}
    assert client.get("/v1/incidentsx").status_code == 404
    assert client.get("/v1").status_code == 404


def test_a_bad_request_id_on_a_public_path_is_a_problem_naming_the_header():
    response = TestClient(gateway()).get("/v1/traffic/segments", headers={"X-Request-Id": "bad id!"})
    assert response.status_code == 400 and "header.x-request-id" in response.text
