"""The OpenFaaS template and the container entry point: what faas-cli and of-watchdog rely on."""

from __future__ import annotations

import asyncio
import shutil

import httpx
import pytest
import yaml
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.formats.json import JSONFormat

from smartcity.errors import ConfigurationError
from smartcity.runtime import entrypoint
from smartcity.runtime.stackfile import read_stack
from smartcity.settings import PROJECT_ROOT
from tests.fixtures.functions.helpers import FIXTURES, embedded_settings, reading, write_stack

TEMPLATE = PROJECT_ROOT / "templates" / "smartcity-python3"


def test_the_template_runs_the_entry_point_under_of_watchdog_in_http_mode():
    template = yaml.safe_load((TEMPLATE / "template.yml").read_text())
    assert template["language"] == TEMPLATE.name
    assert template["fprocess"] == "python index.py"
    dockerfile = (TEMPLATE / "Dockerfile").read_text()
    assert "of-watchdog" in dockerfile and 'CMD ["sh", "/home/app/start.sh"]' in dockerfile
    start = (TEMPLATE / "start.sh").read_text()  # fwatchdog where the image has it, else the function's own server
    assert "exec /usr/bin/fwatchdog" in start and 'exec python index.py --host 0.0.0.0 --port "${port:-8080}"' in start
    assert 'mode="http"' in dockerfile
    assert f'upstream_url="http://{entrypoint.UPSTREAM_HOST}:{entrypoint.UPSTREAM_PORT}"' in dockerfile
    assert "ARG FUNCTION_NAME" in dockerfile and "SMARTCITY_FUNCTION_NAME=${FUNCTION_NAME}" in dockerfile
    assert "from smartcity.runtime.entrypoint import UPSTREAM_HOST, UPSTREAM_PORT, main" in (TEMPLATE / "index.py").read_text()
    # faas-cli looks for templates in ./template
    assert (PROJECT_ROOT / "template" / TEMPLATE.name / "template.yml").is_file()


def test_every_function_uses_the_template_and_the_build_context_has_what_the_dockerfile_copies():
    stack, specs = read_stack(PROJECT_ROOT / "stack.yml")
    assert {spec.entry.lang for spec in specs} == {TEMPLATE.name}
    copied = {path.removeprefix("./") for path in stack.configuration.copy_}
    assert copied == {"smartcity", "models", "pyproject.toml", "README.md", "stack.yml"}
    assert all((PROJECT_ROOT / path).exists() for path in copied)
    assert all((spec.handler_dir / "handler.py").is_file() for spec in specs)


def test_the_container_serves_its_one_function_from_the_copied_stack_file(tmp_path):
    """The image's layout: ./function holds the handler, ./stack.yml the entries, the name comes from the build."""
    stack = write_stack(tmp_path)
    shutil.copytree(FIXTURES / "echo", tmp_path / "function")
    settings = embedded_settings(tmp_path, stack_file=stack, function_name="echo")
    app = entrypoint.container_app(settings, tmp_path / "function")
    event = reading("s2", 3)
    message = sdk_http.to_binary(event, JSONFormat())

    async def invoke() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fn") as client:
            return await client.post("/", headers=message.headers, content=message.body)

    response = asyncio.run(invoke())
    assert response.status_code == 200 and response.json()["doubled"] == 6.0

    with pytest.raises(ConfigurationError, match="SMARTCITY_FUNCTION_NAME"):
        entrypoint.container_app(embedded_settings(tmp_path, stack_file=stack), tmp_path / "function")
    with pytest.raises(ConfigurationError, match="not in"):
        entrypoint.container_app(embedded_settings(tmp_path, stack_file=stack, function_name="nope"), tmp_path)
