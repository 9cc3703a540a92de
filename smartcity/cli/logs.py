"""``smartcity logs``: the centralized log lines of a request, a trace or a function, oldest first.

``smartcity logs --request-id ID``, ``--trace-id ID``, ``--function NAME``, ``--since 10m``, ``--limit N`` (filters
combine) ask the VictoriaLogs that ``SMARTCITY_LOGS_URL`` ships to (``--url`` wins over it), through LogsQL; see
:mod:`smartcity.runtime.logquery`. A bad filter exits with 2 naming the option; an unreachable store with 1.
"""

from __future__ import annotations

import json
from typing import NoReturn, Optional

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console

from smartcity.settings import get_settings

app = typer.Typer(help="The centralized log lines (VictoriaLogs), by request id, trace id or function.")
console = Console(stderr=True)
OPTIONS = {"request_id": "--request-id", "trace_id": "--trace-id", "function": "--function", "since": "--since",
           "limit": "--limit"}


@app.callback(invoke_without_command=True)
def logs(
    request_id: Optional[str] = typer.Option(None, "--request-id", help="The X-Request-Id of a gateway request."),
    trace_id: Optional[str] = typer.Option(None, "--trace-id", help="A W3C trace id (32 hex digits)."),
    function: Optional[str] = typer.Option(None, "--function", help="A function's name."),
    since: str = typer.Option("1h", "--since", help="How far back: 30s, 10m, 2h, 1d, 1w."),
    limit: int = typer.Option(100, "--limit", help="The newest N lines at most (1 to 10000)."),
    url: Optional[str] = typer.Option(None, "--url", help="VictoriaLogs' insert URL (default: SMARTCITY_LOGS_URL)."),
    as_json: bool = typer.Option(False, "--json", help="Print each line as VictoriaLogs returns it (JSON)."),
) -> None:
    """Print the matching log lines, oldest first."""
    from smartcity.runtime.logquery import LogFilter, query_base, query_logs

    try:
        chosen = LogFilter(request_id=request_id, trace_id=trace_id, function=function, since=since, limit=limit)
    except ValidationError as error:
        problems = "; ".join(f"{OPTIONS[str(e['loc'][0])]}: {e['msg']}" for e in error.errors())
        _fail(2, problems)
    logs_url = url or get_settings().logs_url
    if not logs_url:
        _fail(2, "no log store: set SMARTCITY_LOGS_URL (smartcity stack env prints it) or give --url")
    try:
        server = query_base(logs_url)
    except ValueError as error:
        _fail(2, f"--url / SMARTCITY_LOGS_URL: {error}")
    try:
        lines = query_logs(server, chosen)
    except httpx.HTTPError as error:
        _fail(1, f"cannot query the log store at {logs_url}: {error}")
    for line in lines:
        typer.echo(json.dumps(line) if as_json else _text(line))
    console.print(f"{len(lines)} line(s)", highlight=False)


def _text(line: dict) -> str:
    ids = " ".join(f"{name}={line[name]}" for name in ("request_id", "trace_id", "event_id") if line.get(name))
    where = "/".join(part for part in (line.get("service"), line.get("function")) if part)
    return f"{line.get('_time', '')} {line.get('level', ''):7} {where} {line.get('_msg', '')}" + (f"  [{ids}]" if ids else "")


def _fail(code: int, message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)
