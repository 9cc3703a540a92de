"""The client address behind trusted proxies (``SMARTCITY_GATEWAY_TRUSTED_PROXIES``), which names an anonymous
caller's rate-limit bucket: forwarding headers count only from a trusted peer, a caller cannot pick its bucket by
writing them, several proxies in a row are walked through, and a malformed header is ignored, never a 500."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient

from smartcity.errors import ConfigurationError
from smartcity.runtime.client_address import TrustedProxies
from smartcity.runtime.gateway import build_gateway
from tests.ports import free_port
from tests.security.conftest import KEYED_STREAM, STACK_FILE
from tests.stream_functions import prepared_settings

PROXIES = "10.0.0.0/8, 192.168.0.0/16, fd00::/8"
PROXY, OTHER_PROXY, CALLER = "10.0.0.2", "192.168.1.1", "203.0.113.9"
UNTRUSTED_PEER = "198.51.100.20"
ROUTE = f"/function/ingest-{KEYED_STREAM}"


@contextmanager
def gateway_seen_from(folder, peer: str):
    """ingest-weather behind a gateway trusting PROXIES, allowing each caller 2 requests at once, then 1 a second;
    its client connects from ``peer``."""
    settings = prepared_settings(folder).model_copy(update={
        "gateway_rate_per_s": 1.0, "gateway_rate_burst": 2, "gateway_trusted_proxies": PROXIES})
    with TestClient(build_gateway(STACK_FILE, settings, [f"ingest-{KEYED_STREAM}"]), client=(peer, 40000)) as client:
        yield client


def statuses(client: TestClient, forwarded: list[dict[str, str | bytes]]) -> list[int]:
    """The status of an anonymous call with each of these headers (401 while within the rate, then 429)."""
    return [client.post(ROUTE, json=[], headers=headers).status_code for headers in forwarded]


def test_forwarding_headers_from_an_untrusted_peer_do_not_change_its_bucket(tmp_path):
    spoofed = [{"x-forwarded-for": f"203.0.113.{n}"} for n in range(3)] + [{"forwarded": "for=203.0.113.50"}]
    with gateway_seen_from(tmp_path, UNTRUSTED_PEER) as client:
        assert statuses(client, spoofed) == [401, 401, 429, 429]  # one bucket: the peer's


def test_a_trusted_proxy_gives_each_forwarded_caller_its_own_bucket(tmp_path):
    with gateway_seen_from(tmp_path, PROXY) as client:
        assert statuses(client, [{"x-forwarded-for": CALLER}] * 3) == [401, 401, 429]
        assert statuses(client, [{"x-forwarded-for": "203.0.113.10"}]) == [401]  # another caller, a fresh bucket
        assert statuses(client, [{"forwarded": 'for="[2001:db8::7]:4711";proto=https'}] * 3) == [401, 401, 429]


def test_behind_several_proxies_what_the_caller_wrote_left_of_its_address_is_not_read(tmp_path):
    """The caller prepends made-up hops; its own address, appended by the first proxy, is what counts."""
    chains = [{"x-forwarded-for": f"198.51.100.{n}, {CALLER}, {OTHER_PROXY}"} for n in range(3)]
    with gateway_seen_from(tmp_path, PROXY) as client:
        assert statuses(client, chains) == [401, 401, 429]


def test_malformed_forwarding_headers_from_a_trusted_proxy_are_ignored(tmp_path):
    malformed = [{"x-forwarded-for": "not-an-address"}, {"x-forwarded-for": ",,"},
                 {"forwarded": 'for=unknown;;by="'}, {"forwarded": "=;=,"}, {"x-forwarded-for": b"\xe9\xff" * 5}]
    with gateway_seen_from(tmp_path, PROXY) as client:
        assert statuses(client, malformed) == [401, 401, 429, 429, 429]  # all the proxy's own bucket, no 500


@pytest.mark.parametrize(("peer", "headers", "client"), [
    (UNTRUSTED_PEER, {"x-forwarded-for": CALLER}, UNTRUSTED_PEER),
    ("testclient", {"x-forwarded-for": CALLER}, "testclient"),  # a peer that is no address
    (PROXY, {}, PROXY),
    (PROXY, {"x-forwarded-for": CALLER}, CALLER),
    (PROXY, {"x-forwarded-for": f"1.2.3.4, {CALLER}, {OTHER_PROXY}"}, CALLER),
    (PROXY, {"x-forwarded-for": f"{OTHER_PROXY}, 10.1.2.3"}, OTHER_PROXY),  # every hop trusted: the farthest
    (PROXY, {"x-forwarded-for": f"{CALLER}, garbage, {OTHER_PROXY}"}, OTHER_PROXY),  # stops at the last address
    (PROXY, {"x-forwarded-for": f"{CALLER}:8080"}, CALLER),
    (PROXY, {"forwarded": f'for=1.2.3.4, for="{CALLER}";proto=https, for={OTHER_PROXY}'}, CALLER),
    (PROXY, {"forwarded": 'for="[2001:db8::7]:4711"'}, "2001:db8::7"),
    (PROXY, {"forwarded": "for=_hidden"}, PROXY),
    (PROXY, {"x-forwarded-for": CALLER, "forwarded": "for=1.2.3.4"}, CALLER),  # X-Forwarded-For is read first
    ("::ffff:10.0.0.2", {"x-forwarded-for": CALLER}, CALLER),  # a dual-stack socket's IPv4 peer
    ("fd00::1", {"x-forwarded-for": "2001:db8::9"}, "2001:db8::9"),
])
def test_the_client_address_is_the_nearest_untrusted_hop_from_a_trusted_peer(peer, headers, client):
    assert TrustedProxies.parse(PROXIES).client(peer, headers) == client


def test_without_trusted_proxies_every_header_is_ignored():
    assert TrustedProxies.parse("").client(PROXY, {"x-forwarded-for": CALLER}) == PROXY


def test_a_setting_that_is_no_cidr_is_refused_naming_it(tmp_path):
    settings = prepared_settings(tmp_path).model_copy(update={"gateway_trusted_proxies": "10.0.0.0/8, 10.0.0/33"})
    with pytest.raises(ConfigurationError, match="gateway_trusted_proxies.*10.0.0/33"):
        build_gateway(STACK_FILE, settings, [f"ingest-{KEYED_STREAM}"])


def test_the_served_gateway_does_not_let_a_loopback_caller_pick_its_address(tmp_path):
    """`smartcity functions gateway` as it runs: uvicorn, which by itself takes X-Forwarded-For from 127.0.0.1,
    leaves the client address to the guard, so a local caller's made-up header does not give it fresh buckets."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCITY_")}
    env.update(SMARTCITY_SECRETS_DIR=str(tmp_path), SMARTCITY_GATEWAY_RATE_PER_S="0.1", SMARTCITY_GATEWAY_RATE_BURST="2",
               SMARTCITY_GATEWAY_INTERNAL_PORT="0", SMARTCITY_GATEWAY_ACCESS_LOG="false")
    gateway = subprocess.Popen([sys.executable, "-m", "smartcity.cli", "functions", "gateway", f"ingest-{KEYED_STREAM}",
                                "--workers", "1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}{ROUTE}"
    try:
        deadline = time.monotonic() + 60
        while not listening(port):
            assert time.monotonic() < deadline and gateway.poll() is None, "the gateway did not listen within 60 s"
            time.sleep(0.3)
        answers = [httpx.post(url, json=[], headers={"x-forwarded-for": f"203.0.113.{n}"}, timeout=10).status_code
                   for n in range(3)]
        assert answers == [401, 401, 429]  # the peer's one bucket
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)
        gateway.wait(timeout=30)


def listening(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
        return True
    except httpx.TransportError:
        return False
