"""What the gateway refuses before a function sees a request, as problem documents: an unknown function (404),
a body over the limit (413, declared by ``Content-Length`` or counted when it comes chunked), a
``Content-Length`` that is not a byte count (400)."""

from __future__ import annotations

from typing import Awaitable, Callable, Iterable

from starlette.responses import Response

from smartcity.runtime.problems import problem_response
from smartcity.settings import Settings

# The largest request body the gateway hands to a function by default (SMARTCITY_GATEWAY_MAX_BODY_BYTES, 16 MiB):
# an ingest batch at its 10,000 readings fits.
MAX_BODY_BYTES: int = Settings.model_fields["gateway_max_body_bytes"].default
Receive = Callable[[], Awaitable[dict]]


def function_not_found(name: str, known: Iterable[str], instance: str) -> Response:
    """The 404 for a function the gateway does not serve, listing those it does."""
    names = sorted(known)
    return problem_response(404, f"function {name!r} not found", {"path.function": f"no function {name!r}; "
                            f"known: {', '.join(names)}"}, instance=instance, functions=names)


def body_too_large(limit: int, instance: str) -> Response:
    return problem_response(413, f"the body is over {limit} bytes", {"body": f"at most {limit} bytes"},
                            instance=instance)


async def admit_body(scope: dict, receive: Receive, limit: int) -> tuple[Response | None, Receive]:
    """The request's ``receive``, or the problem refusing it: 413 when its body is over ``limit`` bytes, 400 when
    its ``Content-Length`` is not a byte count. A chunked body (no length declared) is read here, up to the limit."""
    headers = dict(scope["headers"])
    path = scope["path"]
    declared = headers.get(b"content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return problem_response(400, "the Content-Length is not a byte count",
                                    {"header.content-length": f"{declared.decode('latin-1')!r} is not a byte count"},
                                    instance=path), receive
        return (body_too_large(limit, path) if int(declared) > limit else None), receive
    if b"transfer-encoding" not in headers:
        return None, receive  # no body
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        size += len(message.get("body", b""))
        if size > limit:
            return body_too_large(limit, path), receive
        if message["type"] != "http.request" or not message.get("more_body"):
            break

    async def replay() -> dict:
        return messages.pop(0) if messages else await receive()
    return None, replay


