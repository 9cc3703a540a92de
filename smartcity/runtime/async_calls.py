"""OpenFaaS's asynchronous invocation, ``/async-function/<name>[/path]``: a POST is answered 202 with
``X-Call-Id`` at once; the function's response is then POSTed to ``X-Callback-Url`` with ``X-Function-Status``,
``X-Function-Name``, ``X-Duration-Seconds`` and ``X-Call-Id``. A callback URL that
:mod:`smartcity.runtime.callbacks` refuses (not http(s), not on the allowlist, or resolving to a loopback, private
or link-local address) is refused (400) up front, and checked again when the result is sent, to the address
checked then; a redirect is not followed. An async call needs the same rights as a direct one: the caller's
rate and the role the function needs (``guard``), and the function's own ``app.state.authorize`` are checked
before the 202."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Callable, Iterable

import httpx
from fastapi import FastAPI
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.responses import Response

from smartcity.runtime.admission import MAX_BODY_BYTES, admit_body, function_not_found
from smartcity.runtime.callbacks import CallbackTarget, resolve_callback
from smartcity.runtime.guard import GatewayGuard
from smartcity.runtime.problems import problem_response

logger = logging.getLogger(__name__)
# Headers that belong to one hop, not to the request the function sees or the callback it sends.
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class AsyncRoutes:
    """``/async-function/<name>``: accept now (202), invoke in the background, POST the result to the callback."""

    def __init__(self, gateway: FastAPI, names: Iterable[str], max_body_bytes: int = MAX_BODY_BYTES,
                 callback_allowed_hosts: str = "", callback_allow_private: bool = False,
                 guard: GatewayGuard | None = None) -> None:
        self.gateway = gateway
        self.names = set(names)
        self.guard = guard or GatewayGuard()
        self.max_body_bytes = max_body_bytes
        self.callback_allowed_hosts = callback_allowed_hosts
        self.callback_allow_private = callback_allow_private
        self.tasks: set[asyncio.Task] = set()
        self._clients: dict[str, httpx.AsyncClient] = {}

    def _client(self, kind: str) -> httpx.AsyncClient:
        if kind not in self._clients:
            self._clients[kind] = (
                # A function that raises has answered 500 (Starlette sends it, then re-raises): that 500 is the
                # result the callback gets, as from OpenFaaS, rather than an error that ends the call unreported.
                httpx.AsyncClient(transport=httpx.ASGITransport(app=self.gateway, raise_app_exceptions=False),
                                  base_url="http://gateway", timeout=None)
                if kind == "internal" else httpx.AsyncClient(timeout=30, follow_redirects=False)
            )
        return self._clients[kind]

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        response = self._refusal(scope)
        if response is None:
            response = await self.guard.rate_refusal(scope)
        if response is None:
            response = self.guard.caller_refusal(get_route_path(scope).lstrip("/").partition("/")[0], scope)
        if response is None:
            response = self._authorization_refusal(scope)
        if response is None:
            response = await self._callback_refusal(scope)
        if response is None:
            response, receive = await admit_body(scope, receive, self.max_body_bytes)
        if response is None:
            response = await self._accept(Request(scope, receive))
        await response(scope, receive, send)

    def _refusal(self, scope: dict) -> Response | None:
        """The problem refusing an async call for what its path and headers say, or None."""
        name = get_route_path(scope).lstrip("/").partition("/")[0]
        path = scope["path"]
        if name not in self.names:
            return function_not_found(name, self.names, path)
        if scope["method"] != "POST":
            return problem_response(405, "an async invocation is a POST", instance=path, headers={"Allow": "POST"})
        return None

    def _authorization_refusal(self, scope: dict) -> Response | None:
        """What the called function's ``app.state.authorize`` says of the caller's headers (None: may call)."""
        name = get_route_path(scope).lstrip("/").partition("/")[0]
        app = self.gateway.state.function_apps.get(name)
        authorize = getattr(getattr(app, "state", None), "authorize", None)
        return authorize(Request(scope).headers, scope["path"]) if authorize is not None else None

    async def _callback_refusal(self, scope: dict) -> Response | None:
        """The problem refusing the call's ``X-Callback-Url``, or None (none given, or one that may be called)."""
        callback_url = Request(scope).headers.get("x-callback-url")
        if callback_url is None:
            return None
        target = await self._callback_target(callback_url)
        if isinstance(target, CallbackTarget):
            return None
        return problem_response(400, "the callback URL is refused", {"header.x-callback-url": target},
                                instance=scope["path"])

    async def _callback_target(self, callback_url: str) -> CallbackTarget | str:
        """``callback_url`` resolved and checked (in a thread: DNS blocks), or why it is refused."""
        return await asyncio.to_thread(resolve_callback, callback_url, self.callback_allowed_hosts,
                                       self.callback_allow_private)

    async def _accept(self, request: Request) -> Response:
        """202 at once; the call runs in the background."""
        name, _, rest = get_route_path(request.scope).lstrip("/").partition("/")
        call_id = request.headers.get("x-call-id") or str(uuid.uuid4())
        start_ns = time.time_ns()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in HOP_HEADERS]
        path = f"/function/{name}/{rest}" + (f"?{request.url.query}" if request.url.query else "")
        job = self._run(name, path, headers, await request.body(), call_id, start_ns, request.headers.get("x-callback-url"))
        task = asyncio.create_task(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return Response(status_code=202, headers={"X-Call-Id": call_id, "X-Start-Time": str(start_ns)})

    async def _run(self, name: str, path: str, headers: list, body: bytes, call_id: str, start_ns: int,
                   callback_url: str | None) -> None:
        started = time.perf_counter()
        result = await self._client("internal").post(path, headers=headers + [("x-call-id", call_id)], content=body)
        duration = time.perf_counter() - started
        logger.info("async call %s to %s: %s in %.3fs", call_id, name, result.status_code, duration)
        if not callback_url:
            return
        callback_headers = {k: v for k, v in result.headers.items() if k.lower() not in HOP_HEADERS}
        callback_headers.update({
            "X-Call-Id": call_id,
            "X-Function-Name": name,
            "X-Function-Status": str(result.status_code),
            "X-Duration-Seconds": f"{duration:f}",
            "X-Start-Time": str(start_ns),
        })
        await self._send_callback(call_id, callback_url, callback_headers, result.content)

    async def _send_callback(self, call_id: str, callback_url: str, headers: dict, body: bytes) -> None:
        """POST the result to ``callback_url``, checked again now and pinned to the address checked: a name that
        resolved to a public address at 202 and to a private one now is refused, and a redirect is a failure."""
        target = await self._callback_target(callback_url)
        if not isinstance(target, CallbackTarget):
            logger.error("async call %s: callback to %s refused: %s", call_id, callback_url, target)
            return
        extensions = {"sni_hostname": target.hostname} if target.url.startswith("https:") else {}
        try:
            answer = await self._client("callback").post(target.url, headers={**headers, "Host": target.host},
                                                         content=body, extensions=extensions)
        except httpx.HTTPError as error:
            logger.error("async call %s: callback to %s failed: %s", call_id, callback_url, error)
            return
        if answer.is_redirect:
            logger.error("async call %s: callback to %s failed: redirected (%s) to %s, not followed", call_id,
                         callback_url, answer.status_code, answer.headers.get("location"))

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(set(self.tasks))
        for client in self._clients.values():
            await client.aclose()
