"""The load generators of bench/bench_api.py: wrk (C, the Debian package), or a Python fallback when wrk is missing.

wrk leaves the servers the CPU (one thread, epoll); the fallback, asyncio in this process, takes a core of its own
and measures less than the servers can do, so the bench says which one ran. Both answer a :class:`Result`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

WRK_SCRIPT = Path(__file__).resolve().parent / "wrk_paced.lua"


@dataclass
class Result:
    scenario: str
    offered: float | None  # requests/s offered; None: as fast as the server answers (the peak)
    requests: int
    seconds: float
    failures: int  # non-2xx answers and socket errors
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def load_generator() -> str:
    return "wrk" if shutil.which("wrk") else "python"


def run_load(scenario: str, url: str, authorization: str, rate: float | None, seconds: float,
             connections: int) -> Result:
    """``seconds`` of GETs of ``url`` at ``rate`` per second (None: the peak) over ``connections`` keep-alive
    connections, by wrk, or by the Python fallback when wrk is missing."""
    if load_generator() == "wrk":
        return _wrk(scenario, url, authorization, rate, seconds, connections)
    return asyncio.run(_python(scenario, url, authorization, rate, seconds, connections))


def _wrk(scenario: str, url: str, authorization: str, rate: float | None, seconds: float,
         connections: int) -> Result:
    env = {**os.environ, "BENCH_AUTHORIZATION": authorization, "BENCH_RATE": str(rate or 0)}
    command = ["wrk", "--threads", "1", "--connections", str(connections), "--duration", f"{seconds:.0f}s",
               "--timeout", "10s", "--script", str(WRK_SCRIPT), url]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return Result(scenario, rate, summary["requests"], summary["seconds"],
                  summary["non_2xx"] + summary["socket_errors"],
                  *(summary[f"p{q}_us"] / 1000 for q in (50, 95, 99)))


async def _python(scenario: str, url: str, authorization: str, rate: float | None, seconds: float,
                  connections: int) -> Result:
    """Open-loop at ``rate`` (request ``i`` due at ``start + i / rate``, timed from then), or closed-loop over
    ``connections`` for the peak."""
    host_port, _, path = url.removeprefix("http://").partition("/")
    host, _, port = host_port.partition(":")
    auth = f"Authorization: {authorization}\r\n" if authorization else ""
    request = f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\n{auth}\r\n".encode()
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection(host, int(port)))
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter = Counter()

    async def one(due: float) -> None:
        reader, writer = await idle.get()
        try:
            statuses[await _exchange(reader, writer, request)] += 1
        finally:
            idle.put_nowait((reader, writer))
        latencies.append((loop.time() - due) * 1000)

    start = loop.time() + 0.05
    if rate:
        tasks = []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    else:
        async def worker() -> None:
            while loop.time() < start + seconds:
                await one(loop.time())

        await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = loop.time() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    failures = sum(count for status, count in statuses.items() if not 200 <= status < 300)
    return Result(scenario, rate, len(latencies), elapsed, failures, cuts[49], cuts[94], cuts[98])


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One request on a keep-alive connection; the response's status code (its body is read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status
