"""One OpenAPI 3 document for all the API functions, and a docs page, served by the gateway.

The gateway calls :func:`install_api_docs` with the API functions' FastAPI apps; it adds ``GET /v1/openapi.json``
(the merged document: every app's paths, which are already under ``/v1/<group>``, and their component schemas)
and ``GET /v1/docs`` (Swagger UI, served from the ``swagger-ui-py`` package's files, so it works offline).
Both are public: they describe the API, they hold no data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from smartcity.api.app import API_VERSION
from smartcity.extras import require

OPENAPI_PATH = f"/{API_VERSION}/openapi.json"
DOCS_PATH = f"/{API_VERSION}/docs"
DOCS_STATIC_PATH = f"{DOCS_PATH}/static"


class OpenApiMergeError(ValueError):
    """Two API apps declare the same path, or the same component name with different definitions."""


def merged_openapi(apps: Mapping[str, FastAPI], title: str = "smartcity API") -> dict[str, Any]:
    """The OpenAPI document of all ``apps`` (function name -> app), tagged by function."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": API_VERSION,
            "description": "Traffic, public transport, mobility, incidents and analytics of the city. Every route "
            "needs a bearer JWT (`smartcity token issue --role viewer`); errors are application/problem+json.",
        },
        "paths": {},
        "components": {},
        "tags": [],
    }
    for name, app in sorted(apps.items()):
        part = app.openapi()
        document["tags"].append({"name": name, "description": part["info"].get("description", "")})
        for path, operations in part.get("paths", {}).items():
            if path in document["paths"]:
                raise OpenApiMergeError(f"{name}: the path {path} is declared by another API function too")
            document["paths"][path] = {
                method: {**operation, "tags": [name]} for method, operation in operations.items()
            }
        for kind, components in part.get("components", {}).items():
            merged = document["components"].setdefault(kind, {})
            for component, definition in components.items():
                if merged.setdefault(component, definition) != definition:
                    raise OpenApiMergeError(f"{name}: the {kind} component {component!r} differs from another's")
    return document


def _swagger_static_dir() -> Path:
    require("api", "swagger_ui")
    import swagger_ui

    return Path(swagger_ui.__file__).resolve().parent / "static"


def install_api_docs(gateway: FastAPI, apps: Mapping[str, FastAPI]) -> None:
    """Add ``/v1/openapi.json`` and ``/v1/docs`` to the gateway, for these API function apps."""
    cached: dict[str, Any] = {}

    def openapi_json() -> JSONResponse:
        if "document" not in cached:
            cached["document"] = merged_openapi(apps)
        return JSONResponse(cached["document"])

    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title="smartcity API",
            swagger_js_url=f"{DOCS_STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC_PATH}/favicon-32x32.png",
        )

    gateway.add_api_route(OPENAPI_PATH, openapi_json, methods=["GET"], include_in_schema=False)
    gateway.add_api_route(DOCS_PATH, docs, methods=["GET"], include_in_schema=False)
    gateway.mount(DOCS_STATIC_PATH, StaticFiles(directory=_swagger_static_dir()), name="api-docs-static")
