"""Profile: CPU time per request of bench_api.py's scenarios, in one process, without HTTP or a load generator.

    .venv/bin/python bench/profile_api.py [--requests 20000] [--concurrency 16] [--profile cached] [--top 25]

The gateway is built as one worker of ``smartcity functions gateway`` builds it, over bench_api.py's stores
(PostgreSQL + Redis database ``REDIS_DB`` of the local stack, seeded, removed at the end), and called as an ASGI app on uvloop,
``--concurrency`` requests at a time, as uvicorn calls it after parsing a request; beside it the bare FastAPI app of
bench_api.py. Each scenario's figure is the process's CPU time (every thread: the bare app's sync route runs in the
thread pool) over its requests, so it means the same on a shared machine, where requests/s do not; the wall time is
printed too, for what it is worth there (the history's includes PostgreSQL's time, which its CPU figure does not:
the server is another process). ``--profile NAME`` runs that scenario (``bare``, ``cached``, ``history``) under cProfile
and prints its ``--top`` functions by own CPU time. HTTP parsing and writing (uvicorn, httptools) are left out: they
cost both servers the same.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_api import Stores, bare_app, history_path  # noqa: E402

REDIS_DB = 11  # bench_api.py's is 12: the two may run at once


def request_scope(path: str, authorization: str) -> dict:
    """The ASGI scope uvicorn makes of ``GET path`` on loopback."""
    route, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"wrk"), (b"accept", b"*/*")]
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": route, "raw_path": route.encode(),
            "query_string": query.encode(), "root_path": "", "headers": headers,
            "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000), "state": {}}


async def call(app, scope: dict) -> int:
    """One request through ``app``; its status (anything but 200 stops the run)."""
    status = 0

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(dict(scope), receive, send)
    return status


async def run(app, scope: dict, requests: int, concurrency: int) -> tuple[float, float]:
    """CPU seconds and wall seconds of ``requests`` calls, ``concurrency`` at a time."""
    async def client(count: int) -> None:
        for _ in range(count):
            status = await call(app, scope)
            if status != 200:
                raise SystemExit(f"{scope['path']} answered {status}")

    share = requests // concurrency
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client(share) for _ in range(concurrency)))
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per scenario")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight at a time")
    parser.add_argument("--profile", choices=("bare", "cached", "history"), help="run this scenario under cProfile")
    parser.add_argument("--top", type=int, default=25, help="functions printed from the profile")
    args = parser.parse_args()

    import uvloop

    from smartcity.api.auth import KeyRing, Role, issue_token

    stores = Stores(Path(tempfile.mkdtemp(prefix="profile-api-")), REDIS_DB)
    try:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        stores.seed(now)
        os.environ.update(stores.environment())
        from smartcity.runtime.gateway import gateway_from_settings
        from smartcity.settings import get_settings

        get_settings.cache_clear()  # read again from the environment just set, as a worker process reads it

        gateway = gateway_from_settings()
        token = issue_token(KeyRing(stores.settings), "profile", Role.viewer, ttl=timedelta(hours=2))
        scenarios = {"bare": (bare_app(), request_scope("/json", "")),
                     "cached": (gateway, request_scope("/v1/traffic/segments", f"Bearer {token}")),
                     "history": (gateway, request_scope(history_path(now), f"Bearer {token}"))}
        loop = uvloop.new_event_loop()
        print(f"{args.requests} requests per scenario, {args.concurrency} at a time, in-process ASGI on uvloop")
        for name, (app, scope) in scenarios.items():
            loop.run_until_complete(run(app, scope, args.concurrency * 50, args.concurrency))  # warm: first fill
            cpu, wall = loop.run_until_complete(run(app, scope, args.requests, args.concurrency))
            print(f"{name:8} CPU {cpu / args.requests * 1e6:7.1f} us/request, wall {wall / args.requests * 1e6:7.1f}"
                  f" us/request")
        if args.profile:
            app, scope = scenarios[args.profile]
            profiler = cProfile.Profile(time.process_time)  # CPU, not wall: other processes share the machine
            profiler.runcall(loop.run_until_complete, run(app, scope, args.requests, args.concurrency))
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
        loop.close()
    finally:
        stores.close()


if __name__ == "__main__":
    main()
