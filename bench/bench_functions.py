"""Bench: the function runtime: a CloudEvent function through the gateway beside a direct call of its handler,
and Kafka-triggered events per second, in one run.

    .venv/bin/python bench/bench_functions.py [--requests 2000] [--concurrency 8] [--events 5000]
                                             [--bus-url kafka://127.0.0.1:9092] [--cache-url redis://127.0.0.1:6379/0]

The function is the runtime tests' ``echo`` (validate a reading, return one derived event, which the runtime
publishes to its output topic). Measured, each in the same run:

- ``handler, direct``: the handler called in-process on a typed event (the baseline: no runtime at all);
- ``runner, in-process``: the runtime's event path without HTTP (dedup lookup, handler, publish and flush, mark);
- ``gateway, sequential`` and ``gateway, N concurrent``: HTTP binary-mode POSTs to ``/function/echo`` on the
  gateway (``smartcity functions gateway``, its own process) over keep-alive connections;
- ``trigger``: ``--events`` records on the input topic, drained by the trigger (in this process, alone): events
  per second from its first handled event to its last (so consumer-group start-up is not counted).

The bus and cache are the embedded ones in a temporary folder unless ``--bus-url``/``--cache-url`` name servers
(``smartcity stack up`` starts them). Every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.formats.json import JSONFormat

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from smartcity.backends.bus import open_bus  # noqa: E402
from smartcity.backends.cache import open_cache  # noqa: E402
from smartcity.runtime.bindings import record_of  # noqa: E402
from smartcity.runtime.loader import load_stack  # noqa: E402
from smartcity.runtime.readiness import wait_until_ready  # noqa: E402
from smartcity.runtime.runner import FunctionRunner  # noqa: E402
from smartcity.runtime.trigger import Triggers  # noqa: E402
from tests.fixtures.functions.helpers import embedded_settings, reading, write_stack  # noqa: E402

SMARTCITY = Path(sys.executable).with_name("smartcity")
DEADLINE_S = 300


def _row(name: str, count: int, seconds: float, latencies_ms: list[float] | None = None) -> None:
    rate = count / seconds if seconds else float("inf")
    if latencies_ms:
        cuts = statistics.quantiles(latencies_ms, n=100)
        print(f"{name:<28} {rate:>10,.0f}/s   p50 {cuts[49]:7.3f} ms   p99 {cuts[98]:7.3f} ms   ({count} calls)")
    else:
        print(f"{name:<28} {rate:>10,.0f}/s   ({count} events in {seconds:.2f} s)")


def _timed(call, count: int) -> tuple[float, list[float]]:
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        begin = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - begin) * 1000)
    return time.perf_counter() - started, latencies


def bench_in_process(stack: Path, settings, count: int) -> None:
    [echo] = load_stack(stack, settings, ["echo"])
    runner = FunctionRunner(echo)
    typed = [runner.typed(reading(f"s{i % 10}", i)) for i in range(count)]
    events = iter(typed)
    seconds, latencies = _timed(lambda: echo.handler.handle(next(events), echo.context), count)
    _row("handler, direct", count, seconds, latencies)
    fresh = iter([runner.typed(reading(f"s{i % 10}", i)) for i in range(count)])
    seconds, latencies = _timed(lambda: runner.run([next(fresh)]), count)
    _row("runner, in-process", count, seconds, latencies)
    echo.context._backends.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(settings) -> dict[str, str]:
    return {**os.environ, "SMARTCITY_BUS_URL": settings.bus_url, "SMARTCITY_CACHE_URL": settings.cache_url,
            "SMARTCITY_TOPIC_PARTITIONS": str(settings.topic_partitions), "SMARTCITY_LOG_LEVEL": "WARNING"}


def _messages(count: int) -> list:
    return [sdk_http.to_binary(reading(f"s{i % 10}", i), JSONFormat()) for i in range(count)]


async def _concurrent(url: str, messages: list, concurrency: int) -> tuple[float, list[float]]:
    queue: asyncio.Queue = asyncio.Queue()
    for message in messages:
        queue.put_nowait(message)
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            message = queue.get_nowait()
            begin = time.perf_counter()
            response = await client.post("/function/echo", headers=message.headers, content=message.body)
            latencies.append((time.perf_counter() - begin) * 1000)
            assert response.status_code == 200, response.text

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*(worker(client) for _ in range(concurrency))), DEADLINE_S)
        return time.perf_counter() - started, latencies


def bench_gateway(stack: Path, settings, count: int, concurrency: int) -> None:
    port, internal_port = _free_port(), _free_port()
    server = subprocess.Popen([str(SMARTCITY), "functions", "gateway", "echo", "--stack", str(stack), "--port", str(port),
                               "--internal-port", str(internal_port)],
                              env=_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(f"http://127.0.0.1:{internal_port}/healthz", 60, server)  # health: on the internal port
        with httpx.Client(base_url=url, timeout=30) as client:
            messages = iter(_messages(count))

            def call() -> None:
                message = next(messages)
                assert client.post("/function/echo", headers=message.headers, content=message.body).status_code == 200

            seconds, latencies = _timed(call, count)
        _row("gateway, sequential", count, seconds, latencies)
        seconds, latencies = asyncio.run(_concurrent(url, _messages(count), concurrency))
        _row(f"gateway, {concurrency} concurrent", count, seconds, latencies)
    finally:
        server.terminate()
        server.wait(30)


def bench_trigger(stack: Path, settings, run: str, count: int) -> None:
    """Events per second through the trigger, timed by its own invocation counter from its first handled event
    to its last (consumer-group start-up is not counted)."""
    bus = open_bus(settings.bus_url)
    source, output = f"readings-{run}", f"echoed-{run}"
    bus.create_topics([source, output], settings.topic_partitions)
    for i in range(count):
        key, value, headers = record_of(reading(f"s{i % 10}", i, partitionkey=f"s{i % 10}"))
        bus.publish(source, value, key=key, headers=headers)
    bus.flush()
    triggers = Triggers(load_stack(stack, settings, ["echo"]))
    first = last = None
    handled_at_first = 0
    deadline = time.monotonic() + DEADLINE_S
    triggers.start()
    try:
        while time.monotonic() < deadline:
            handled = triggers.metrics.invocation_count("echo")
            if handled and first is None:
                first, handled_at_first = time.perf_counter(), handled
            if handled >= count:
                last = time.perf_counter()
                break
            time.sleep(0.005)
    finally:
        triggers.stop()
        bus.delete_topics([source, output, f"dead-letter-{run}"])
        bus.close()
    if last is None:
        print(f"trigger: only {triggers.metrics.invocation_count('echo')} of {count} events handled in {DEADLINE_S} s")
        return
    _row(f"trigger ({settings.bus_url.split(':')[0]} bus)", count - handled_at_first, last - first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--bus-url", default=None)
    parser.add_argument("--cache-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        directory = Path(folder)
        run = f"bench{os.getpid()}"
        overrides = {k: v for k, v in (("bus_url", args.bus_url), ("cache_url", args.cache_url)) if v}
        settings = embedded_settings(directory, **overrides)
        stack = write_stack(directory, run)
        print(f"echo function; bus {settings.bus_url}; cache {settings.cache_url}; {os.cpu_count()} CPUs")
        try:
            bench_in_process(stack, settings, args.requests)
            bench_gateway(stack, settings, args.requests, args.concurrency)
            bench_trigger(stack, settings, run, args.events)
        finally:  # the dedup marks of this run's events, where the cache outlives it (redis://)
            cache = open_cache(settings.cache_url, settings=settings)
            keys = cache.keys("dedup:echo:")
            if keys:
                cache.delete(*keys)
            cache.close()


if __name__ == "__main__":
    main()
