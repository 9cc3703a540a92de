"""Load functions of a stack file through the real loader and replay HTTP calls on them, as a client sends them.

The same calls go to a function wherever it runs: in this process (:func:`answers_in_process`), in a virtual
environment made from the wheel (run as a script there: ``python replay.py STACK_FILE CALLS_JSON`` prints the
answers as JSON), or in its built image over real HTTP (:func:`answers_over_http`). So this file imports only the
installed ``smartcity`` package (with its ``runtime`` extra) and the standard library: no test helper, no pytest.
The settings come from the environment (``SMARTCITY_*``), as in a function's container.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any

import httpx


def read_calls(path: Path) -> dict[str, dict[str, Any]]:
    """The calls of a JSON file: function name -> {method, path, headers, body (base64)}."""
    return json.loads(path.read_text())


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """What a caller sees of a response: its status, media type and body (JSON when it is JSON)."""
    media_type = response.headers.get("content-type", "").split(";")[0]
    try:
        body: Any = response.json() if response.content else None
    except ValueError:
        body = response.text
    return {"status": response.status_code, "media_type": media_type, "body": body}


def send(client: httpx.Client, call: dict[str, Any]) -> dict[str, Any]:
    response = client.request(call["method"], call["path"], headers=call["headers"],
                              content=base64.b64decode(call["body"]))
    return answer_of(response)


def answers_in_process(stack_file: Path, calls: dict[str, dict[str, Any]], settings: Any = None
                       ) -> dict[str, dict[str, Any]]:
    """Each function loaded by the real loader, served by its ASGI app in this process, answering its call;
    on ``settings``, by default those of the environment.

    A function whose extra is not installed answers ``{"missing_extra": <the error's message>}``.
    """
    from starlette.testclient import TestClient

    from smartcity.extras import MissingExtra
    from smartcity.runtime.context import Backends
    from smartcity.runtime.loader import load_stack
    from smartcity.runtime.server import function_app
    from smartcity.settings import get_settings

    answers, backends = {}, Backends()
    try:
        for name, call in calls.items():
            try:
                (function,) = load_stack(stack_file, settings or get_settings(), [name], backends)
            except MissingExtra as error:
                answers[name] = {"missing_extra": str(error)}
                continue
            with TestClient(function_app(function), base_url="http://function") as client:
                answers[name] = send(client, call)
    finally:
        backends.close()
    return answers


def answers_over_http(base_url: str, call: dict[str, Any]) -> dict[str, Any]:
    """The answer of a function served at ``base_url`` (its image's server) to ``call``."""
    with httpx.Client(base_url=base_url, timeout=30.0) as client:
        return send(client, call)


def main(argv: list[str]) -> None:
    stack_file, calls_file = (Path(arg) for arg in argv)
    json.dump(answers_in_process(stack_file, read_calls(calls_file)), sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
