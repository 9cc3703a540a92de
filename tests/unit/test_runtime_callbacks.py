"""Callbacks of ``/async-function`` go only to allowlisted hosts at public addresses.

The address check is tested by itself, without sending anything (a literal IP is judged without DNS, so the
socket module is made to fail if touched); the gateway's refusals are tested with a listener on 127.0.0.1 that
proves nothing arrived. No traffic leaves loopback.
"""

from __future__ import annotations

import logging
import queue
import socket
import time
from contextlib import contextmanager
from typing import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from smartcity.runtime import callbacks
from smartcity.runtime.callbacks import CallbackTarget, check_callback, resolve_callback
from smartcity.runtime.gateway import build_gateway
from tests.credentials import admin_headers
from tests.fixtures.functions.helpers import embedded_settings, serving, write_stack
from tests.problem_assertions import answered_problem

PUBLIC = "93.184.215.14"
# Literal hosts, each allowlisted, refused for their address alone: (host in the URL, kind named in the reason).
REFUSED_LITERALS = [
    ("127.0.0.1", "loopback"),
    ("[::1]", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("[fc00::1]", "private"),
    ("169.254.169.254", "link-local"),
    ("[fe80::1]", "link-local"),
    ("0.0.0.0", "unspecified"),
    ("[::]", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "reserved"),
    ("[::ffff:127.0.0.1]", "loopback"),
    ("[::ffff:169.254.169.254]", "link-local"),
    ("100.64.0.1", "non-global"),
]
# Never called back, even with callback_allow_private.
ALWAYS_REFUSED = ["169.254.169.254", "[fe80::1]", "0.0.0.0", "[::ffff:169.254.169.254]", "224.0.0.1", "240.0.0.1"]


@pytest.fixture
def no_network(monkeypatch):
    """Any DNS lookup or connection fails the test: the check of a literal must need neither."""
    def refuse(*args, **kwargs):
        raise AssertionError("the address check touched the network")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize(("host", "kind"), REFUSED_LITERALS)
def test_an_allowlisted_literal_at_a_non_public_address_is_refused(no_network, host, kind):
    reason = check_callback(f"http://{host}:8080/done", host.strip("[]"))
    assert reason is not None and f"{kind} addresses are refused" in reason


@pytest.mark.parametrize("host", ALWAYS_REFUSED)
def test_link_local_metadata_unspecified_and_multicast_stay_refused_with_private_allowed(no_network, host):
    assert check_callback(f"http://{host}/done", host.strip("[]"), allow_private=True) is not None


def test_a_public_literal_on_the_allowlist_is_accepted_and_pinned(no_network):
    assert check_callback(f"http://{PUBLIC}/done", PUBLIC) is None
    assert resolve_callback(f"https://{PUBLIC}:8443/done?x=1", f"{PUBLIC}:8443") == CallbackTarget(
        url=f"https://{PUBLIC}:8443/done?x=1", address=PUBLIC, host=f"{PUBLIC}:8443", hostname=PUBLIC)


def test_a_host_not_on_the_allowlist_is_refused_before_any_lookup(no_network):
    assert "not on the callback allowlist" in check_callback(f"http://{PUBLIC}/done", "")
    assert "not on the callback allowlist" in check_callback(f"http://{PUBLIC}:81/done", f"{PUBLIC}:80")
    assert "not on the callback allowlist" in check_callback("http://example.com/done", f"{PUBLIC}, example.org")
    assert check_callback(f"http://{PUBLIC}:81/done", f"example.org, {PUBLIC}") is None  # no port: any port


def test_a_url_that_is_not_http_is_refused(no_network):
    for url in ("file:///etc/passwd", "ftp://example.com/", "http:///no-host", "example.com/done"):
        assert "not an absolute http(s) URL" in check_callback(url, "example.com")


def test_a_name_that_resolves_to_loopback_is_refused_after_resolution():
    reason = check_callback("http://localhost:8080/done", "localhost")
    assert reason is not None and "'localhost' is at" in reason and "loopback addresses are refused" in reason


def test_a_name_allowed_to_be_private_is_pinned_to_the_address_it_resolved_to():
    target = resolve_callback("http://LocalHost.:8080/done?x=1", "localhost:8080", allow_private=True)
    assert isinstance(target, CallbackTarget)
    assert target.address in ("127.0.0.1", "::1")
    assert target.url in ("http://127.0.0.1:8080/done?x=1", "http://[::1]:8080/done?x=1")
    assert target.host == "LocalHost.:8080"  # the Host header the listener sees is the URL's own


class Listener:
    """A callback listener on 127.0.0.1: what it received, and a redirect to its own /done."""

    def __init__(self) -> None:
        self.received: queue.Queue = queue.Queue()
        self.app = Starlette(routes=[Route("/done", self.done, methods=["POST"]),
                                     Route("/redirect", self.redirect, methods=["POST"])])

    async def done(self, request: Request) -> Response:
        self.received.put(("/done", dict(request.headers), await request.body()))
        return Response(status_code=200)

    async def redirect(self, request: Request) -> Response:
        self.received.put(("/redirect", dict(request.headers), await request.body()))
        return RedirectResponse("/done", status_code=307)


@contextmanager
def gateway_client(tmp_path, **settings) -> Iterator[httpx.Client]:
    gateway_settings = embedded_settings(tmp_path, **settings)
    app = build_gateway(write_stack(tmp_path, run=tmp_path.name[-12:]), gateway_settings)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.settings = gateway_settings
        yield client


@pytest.fixture
def listener() -> Iterator[tuple[Listener, str]]:
    listening = Listener()
    with serving(listening.app) as url:
        yield listening, url


def test_callbacks_to_loopback_are_refused_by_the_gateway_and_nothing_arrives(tmp_path, listener):
    listening, url = listener
    port = url.rsplit(":", 1)[1]
    with gateway_client(tmp_path, callback_allowed_hosts=f"127.0.0.1:{port}, ::1, localhost") as gateway:
        for callback_url in (f"{url}/done", f"http://[::1]:{port}/done", f"http://localhost:{port}/done"):
            answer = gateway.post("/async-function/hello-http/echo/hi", content=b"x",
                                  headers={"X-Callback-Url": callback_url})
            assert "loopback addresses are refused" in answered_problem(answer, 400)["header.x-callback-url"]
        elsewhere = f"http://127.0.0.1:{int(port) + 1}/done"  # the listener's host at a port not allowlisted
        refused_elsewhere = gateway.post("/async-function/hello-http/echo/hi", headers={"X-Callback-Url": elsewhere})
        assert "not on the callback allowlist" in answered_problem(refused_elsewhere, 400)["header.x-callback-url"]
        # Nothing was invoked: the function's invocation count is still 0.
        admin = admin_headers(gateway.settings)
        assert gateway.get("/system/function/hello-http", headers=admin).json()["invocationCount"] == 0
    with pytest.raises(queue.Empty):
        listening.received.get(timeout=1)


def test_an_allowlisted_listener_with_private_allowed_gets_the_callback(tmp_path, listener):
    listening, url = listener
    host_port = url.removeprefix("http://")
    with gateway_client(tmp_path, callback_allowed_hosts=host_port, callback_allow_private=True) as gateway:
        answer = gateway.post("/async-function/hello-http/echo/hi", content=b"there",
                              headers={"X-Callback-Url": f"{url}/done"})
        assert answer.status_code == 202, answer.text
        path, headers, body = listening.received.get(timeout=10)
    assert (path, headers["x-function-status"], headers["host"]) == ("/done", "200", host_port)
    assert headers["x-call-id"] == answer.headers["x-call-id"]
    assert httpx.Response(200, content=body).json() == {"word": "hi", "body": "there"}


def test_a_redirecting_callback_is_not_followed_and_is_logged_as_failed(tmp_path, listener, caplog):
    listening, url = listener
    caplog.set_level(logging.ERROR, logger="smartcity.runtime.async_calls")
    with gateway_client(tmp_path, callback_allowed_hosts=url.removeprefix("http://"),
                        callback_allow_private=True) as gateway:
        answer = gateway.post("/async-function/hello-http/echo/hi", headers={"X-Callback-Url": f"{url}/redirect"})
        assert answer.status_code == 202, answer.text
        assert listening.received.get(timeout=10)[0] == "/redirect"
        deadline = time.monotonic() + 10
        while "not followed" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert "redirected (307)" in caplog.text and "not followed" in caplog.text
    with pytest.raises(queue.Empty):
        listening.received.get(timeout=0.5)


def test_the_check_runs_again_at_send_time(tmp_path, listener, monkeypatch, caplog):
    """Accepted at 202, refused when sending: the check in hand when the POST goes is the one that counts."""
    listening, url = listener
    caplog.set_level(logging.ERROR, logger="smartcity.runtime.async_calls")
    checks: list[str] = []
    real = callbacks.resolve_callback

    def second_time_refused(callback_url, allowlist, allow_private=False):
        checks.append(callback_url)
        return real(callback_url, allowlist, allow_private=len(checks) == 1)

    monkeypatch.setattr("smartcity.runtime.async_calls.resolve_callback", second_time_refused)
    with gateway_client(tmp_path, callback_allowed_hosts=url.removeprefix("http://")) as gateway:
        answer = gateway.post("/async-function/hello-http/echo/hi", headers={"X-Callback-Url": f"{url}/done"})
        assert answer.status_code == 202, answer.text
        deadline = time.monotonic() + 10
        while "refused" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    assert checks == [f"{url}/done"] * 2 and "loopback addresses are refused" in caplog.text
    with pytest.raises(queue.Empty):
        listening.received.get(timeout=0.5)
