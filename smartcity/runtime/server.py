"""The ASGI app of one function: what the gateway mounts at ``/function/<name>`` and a container serves at ``/``.

A CloudEvent function's app takes CloudEvents in a POST, in binary, structured or batch mode, and replies with
the events its handler returned (none: 204; one: in the request's mode; several: a batch). Invalid events or data
get a 400 problem document (:mod:`smartcity.runtime.problems`) naming each bad field; a handler error gets a 500
problem naming the error. An HTTP function's app is its own
ASGI app, returned as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from smartcity.runtime.bindings import events_from_http, events_to_http
from smartcity.runtime.events import InvalidEvent
from smartcity.runtime.loader import LoadedFunction
from smartcity.runtime.problems import problem_response, send_problem
from smartcity.runtime.runner import FunctionRunner

ASGIApp = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable[None]]
logger = logging.getLogger(__name__)


def json_response(status: int, body: Any) -> Response:
    return Response(json.dumps(body), status_code=status, media_type="application/json")


class CloudEventApp:
    """ASGI app serving one CloudEvent function over HTTP."""

    def __init__(self, runner: FunctionRunner) -> None:
        self.runner = runner

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            await _accept_lifespan(receive, send)
            return
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request) -> Response:
        path = request.url.path
        if request.method != "POST":
            return problem_response(405, f"{request.method} not allowed: POST a CloudEvent", instance=path,
                                    headers={"Allow": "POST"})
        body = await request.body()
        try:
            mode, cloudevents = events_from_http(request.headers, body)
            events = self.runner.typed_all(cloudevents)
        except InvalidEvent as error:
            return send_problem(error.as_problem(instance=path))
        try:
            results = await run_in_threadpool(self.runner.run_chunked, events)
        except Exception as error:  # noqa: BLE001 - reported to the caller, who may retry
            logger.exception("function %s failed", self.runner.name)
            return problem_response(500, f"{type(error).__name__}: {error}", instance=path, function=self.runner.name)
        status, headers, payload = events_to_http(results, mode)
        return Response(payload, status_code=status, headers=headers)


async def _accept_lifespan(receive: Callable, send: Callable) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def function_app(function: LoadedFunction) -> ASGIApp:
    """The ASGI app of a loaded function."""
    return function.app if function.app is not None else CloudEventApp(FunctionRunner(function))


class Lifespan:
    """Runs a mounted app's lifespan (startup, then shutdown), as a server would for a top-level app.

    Starlette does not run the lifespan of mounted apps; a FastAPI function with startup work needs it run.
    An app that does not speak the lifespan protocol is left alone, as uvicorn does with ``lifespan="auto"``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._to_app: asyncio.Queue[dict] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    async def _exchange(self, message: dict, expected: str) -> None:
        await self._to_app.put(message)
        waiter = asyncio.ensure_future(self._from_app.get())
        assert self._task is not None
        done, _ = await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if waiter not in done:
            waiter.cancel()
            self._task = None  # the app does not support lifespan: nothing to run
            return
        reply = waiter.result()
        if reply["type"] != expected:
            raise RuntimeError(f"lifespan of {self.app!r} failed: {reply.get('message', reply['type'])}")

    async def startup(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.create_task(self._run(scope))
        await self._exchange({"type": "lifespan.startup"}, "lifespan.startup.complete")

    async def _run(self, scope: dict) -> None:
        try:
            await self.app(scope, self._to_app.get, self._from_app.put)
        except Exception:  # noqa: BLE001 - an app without lifespan support raises on the lifespan scope
            logger.debug("%r does not support lifespan", self.app)

    async def shutdown(self) -> None:
        if self._task is not None:
            await self._exchange({"type": "lifespan.shutdown"}, "lifespan.shutdown.complete")
            await self._task
