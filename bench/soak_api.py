"""Soak: API reads through the gateway at a fixed rate for a long time, reported per minute (issue 17 item 4: "10
minutes at 100,000 requests/min with 0 errors").

    .venv/bin/python bench/soak_api.py [--soak 600] [--soak-rate 1667] [--read history|cached]
                                       [--baseline-seconds 60] [--workers N] [--connections 64]

The servers, stores and scenarios are bench/bench_api.py's (its ``api_servers``: PostgreSQL and Redis of the local
stack, the gateway serving the five API functions with its rate limit and access log off, and the bare FastAPI
app). ``--read`` picks the gateway's request: ``history`` (default; the uncached SQL aggregation of 288 windows
per request) or ``cached`` (the segments list from Redis's read cache, JWT checked on every request).

First the baseline, measured in the same run: the bare FastAPI JSON endpoint at ``--soak-rate`` for
``--baseline-seconds``. Then the gateway at ``--soak-rate`` for ``--soak`` seconds, one wrk run per minute (a
fresh schedule each minute: a minute that fell behind does not push its backlog onto the next). Each minute's row:
requests offered and achieved per second, p50/p95/p99, non-2xx answers and socket errors, and the load average
(1 min) at its end; a last row sums the whole soak. Exit 1 on any error or on a minute more than 5 % under the
offered rate. The load average is printed because on a shared machine the figures mean little when it exceeds
the number of CPUs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from api_load import Result, load_generator, run_load  # noqa: E402
from bench_api import api_servers  # noqa: E402

READS = {"history": "gateway uncached history", "cached": "gateway cached read"}
MINUTE_S = 60.0
SHORTFALL = 0.95  # a minute under 95 % of the offered rate fell behind


def minutes(total_s: float) -> list[float]:
    """The soak cut into wrk runs of a minute (the last one shorter)."""
    full, rest = divmod(total_s, MINUTE_S)
    return [MINUTE_S] * int(full) + ([rest] if rest >= 1 else [])


def row(label: str, result: Result, rate: float) -> str:
    return (f"{label:>10} {rate:>9.0f} {result.rps:>9.0f} {result.p50_ms:>8.2f} {result.p95_ms:>8.2f} "
            f"{result.p99_ms:>8.2f} {result.failures:>7}  load {os.getloadavg()[0]:.2f}/{os.cpu_count()}")


def combined(results: list[Result], rate: float) -> Result:
    """The soak as one result: requests and errors summed; the worst minute's percentiles (wrk gives no histogram
    to merge)."""
    return Result("soak", rate, sum(r.requests for r in results), sum(r.seconds for r in results),
                  sum(r.failures for r in results), max(r.p50_ms for r in results),
                  max(r.p95_ms for r in results), max(r.p99_ms for r in results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soak", type=float, default=600.0, help="seconds of the soak (default 600)")
    parser.add_argument("--soak-rate", type=float, default=1667.0, help="requests/s offered (default 1667)")
    parser.add_argument("--read", choices=READS, default="history", help="the gateway's request (default history)")
    parser.add_argument("--baseline-seconds", type=float, default=60.0, help="seconds of the bare FastAPI baseline")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections of the load generator")
    parser.add_argument("--workers", type=int, default=None, help="worker processes per server; default one per CPU")
    args = parser.parse_args()
    if args.soak < 1 or args.soak_rate <= 0 or args.baseline_seconds < 1:
        parser.error("--soak and --baseline-seconds must be at least 1 s, --soak-rate above 0")

    from smartcity.cli.functions import worker_count

    workers = worker_count(args.workers, 0)
    header = (f"{'minute':>10} {'offered/s':>9} {'req/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7}")
    print(f"soak: {READS[args.read]} at {args.soak_rate:.0f} requests/s for {args.soak:.0f} s; {workers} worker "
          f"process(es) per server, {args.connections} connections, load generator {load_generator()}", flush=True)
    with api_servers(workers) as servers:
        scenarios = servers.scenarios()
        url, authorization = scenarios["bare FastAPI JSON"]
        baseline = run_load("bare FastAPI JSON", url, authorization, args.soak_rate, args.baseline_seconds,
                            args.connections)
        print(f"\nbaseline, bare FastAPI JSON for {args.baseline_seconds:.0f} s:\n{header}")
        print(row("baseline", baseline, args.soak_rate), flush=True)
        print(f"\ngateway, {READS[args.read]}, per minute (errors: non-2xx answers and socket errors):\n{header}")
        url, authorization = scenarios[READS[args.read]]
        results = []
        for number, seconds in enumerate(minutes(args.soak), 1):
            results.append(run_load(READS[args.read], url, authorization, args.soak_rate, seconds, args.connections))
            print(row(str(number), results[-1], args.soak_rate), flush=True)
    total = combined(results, args.soak_rate)
    print(row("whole soak", total, args.soak_rate) + "  (percentiles: the worst minute's)")
    behind = [n for n, r in enumerate(results, 1) if r.rps < SHORTFALL * args.soak_rate]
    verdict = (f"{total.requests} requests, {total.failures} errors; "
               + (f"minutes under {SHORTFALL:.0%} of the offered rate: {behind}" if behind else "every minute at rate"))
    print(verdict)
    return 1 if total.failures or behind else 0


if __name__ == "__main__":
    sys.exit(main())
