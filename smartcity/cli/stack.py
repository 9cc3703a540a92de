"""``smartcity stack``: start, stop and show the real local services (Kafka, PostgreSQL, Redis, FerretDB, S3,
Prometheus), and print the settings that point the platform at them."""

from __future__ import annotations

import os
import shlex
import time

import typer
from rich.console import Console
from rich.table import Table

from smartcity import stack
from smartcity.errors import ConfigurationError
from smartcity.events import platform_topics
from smartcity.settings import get_settings
from smartcity.stack.kafka import create_platform_topics
from smartcity.stack.tls import ensure_tls

app = typer.Typer(help="The real local services, run as this project's own processes (no Docker needed).")
console = Console()

NAMES_HELP = (f"Services to act on (default: all): {', '.join(stack.SERVICES)}; "
              f"optional ones, only when named: {', '.join(stack.OPTIONAL_SERVICES)}.")


def _show(message: str) -> None:
    console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {message}")


def _fail(error: Exception) -> None:
    console.print(f"[red]error[/red] {error}")
    raise typer.Exit(1)


tls_app = typer.Typer(help="The project CA of the local stack and its server certificate (<stack_dir>/tls/).")
app.add_typer(tls_app, name="tls")


@tls_app.command("init")
def tls_init() -> None:
    """Make the CA and the server certificate for 127.0.0.1/localhost unless valid ones are there; print the CA."""
    files = ensure_tls(get_settings().stack_dir)
    typer.echo(f"CA (SMARTCITY_TLS_CA_FILE): {files.ca_cert}\nserver certificate: {files.cert}, key: {files.key}")


def _use_tls(tls: bool) -> None:
    """``--tls`` wins over SMARTCITY_STACK_TLS: the settings are read again with it on."""
    if tls:
        os.environ["SMARTCITY_STACK_TLS"] = "true"
        get_settings.cache_clear()


TLS_OPTION = typer.Option(False, "--tls", help="Run the servers with TLS from the project CA (SMARTCITY_STACK_TLS).")


@app.command()
def up(names: list[str] = typer.Argument(None, help=NAMES_HELP, show_default=False), tls: bool = TLS_OPTION) -> None:
    """Install (first time only) and start the services not running; wait until each is healthy."""
    _use_tls(tls)
    begun = time.monotonic()
    try:
        with console.status("starting the local services…"):
            started = stack.up(names or None, progress=_show)
    except stack.StackError as error:
        _fail(error)
    console.print(f"started: {', '.join(started) or 'none (all were running)'} in {time.monotonic() - begun:.1f}s")
    _print_status(stack.status(names or None))


@app.command()
def down(names: list[str] = typer.Argument(None, help=NAMES_HELP, show_default=False)) -> None:
    """Stop the services and wait until none of their processes is left."""
    try:
        with console.status("stopping the local services…"):
            stack.down(names or None, progress=_show, force=True)
    except stack.StackError as error:
        _fail(error)


@app.command()
def status(names: list[str] = typer.Argument(None, help=NAMES_HELP, show_default=False), tls: bool = TLS_OPTION) -> None:
    """Print a table of the services (service, address, healthy, version); exit 1 if any is unhealthy."""
    _use_tls(tls)
    try:
        rows = stack.status(names or None)
    except stack.StackError as error:
        _fail(error)
    _print_status(rows)
    if not all(row.healthy for row in rows):
        raise typer.Exit(1)


@app.command()
def env(tls: bool = TLS_OPTION) -> None:
    """Print `export SMARTCITY_...=...` lines that point the platform at the local services (for `eval`)."""
    _use_tls(tls)
    for name, value in stack.settings_env().items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@app.command()
def topics() -> None:
    """Create the platform's topics that are missing on the Kafka of SMARTCITY_BUS_URL (e.g. under docker compose)."""
    settings = get_settings()
    try:
        create_platform_topics(settings.bus_url, settings.topic_partitions)
    except ConfigurationError as error:
        _fail(error)
    typer.echo(f"{len(platform_topics())} topics present on {settings.bus_url}, new ones with {settings.topic_partitions} partitions")


def _print_status(rows: list[stack.ServiceStatus]) -> None:
    table = Table("service", "address", "healthy", "version", "pid")
    for row in rows:
        healthy = "[green]yes[/green]" if row.healthy else "[red]no[/red]"
        table.add_row(row.service, row.address, healthy, row.version or "-", str(row.pid or "-"))
    console.print(table)
