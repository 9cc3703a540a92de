"""Each gateway request's id and trace: in every log line written while it is handled, and in its response.

``X-Request-Id`` is taken from the request (letters, digits and ``._:-``, at most 128; anything else is a 400
problem naming ``header.x-request-id``) or made up, and sent back in the response. The W3C ``traceparent`` (and
``tracestate``) of the request is continued with a span of the gateway's own, or a trace is started (an invalid
``traceparent`` is ignored, as the W3C recommendation says); the response's ``traceresponse`` names that span.
"""

from __future__ import annotations

import re
import uuid
from typing import Callable

from smartcity.runtime import tracing
from smartcity.runtime.jsonlog import log_context
from smartcity.runtime.problems import problem_response

REQUEST_ID_HEADER = "x-request-id"
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class RequestContext:
    """ASGI middleware giving every HTTP request its request id and trace."""

    def __init__(self, app: Callable) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        request_id = headers.get(REQUEST_ID_HEADER)
        if request_id is not None and not REQUEST_ID.fullmatch(request_id):
            refusal = problem_response(400, "invalid request id", {
                f"header.{REQUEST_ID_HEADER}": "at most 128 letters, digits, '.', '_', ':' or '-'"},
                instance=scope["path"])
            await refusal(scope, receive, send)
            return
        request_id = request_id or uuid.uuid4().hex
        parent = tracing.parse(headers.get("traceparent"), headers.get("tracestate"))
        trace = parent.child() if parent is not None else tracing.start_trace()
        added = [(b"x-request-id", request_id.encode()), (b"traceresponse", trace.traceparent.encode())]

        async def send_with_ids(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *added]}
            await send(message)

        with log_context(request_id=request_id), tracing.traced(trace):
            await self.app(scope, receive, send_with_ids)
