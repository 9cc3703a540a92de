"""``smartcity grafana``: render the dashboards and provisioning files, and print what a Grafana needs to load them.

``build`` writes ``grafana/dashboards/*.json`` and ``grafana/provisioning/**.yml`` from their Python definitions
in ``grafana/`` (``--check`` only reports stale files, for CI). ``env`` prints the environment a Grafana started on
this machine reads: the provisioning folder, and where Prometheus and PostgreSQL are, from
``SMARTCITY_PROMETHEUS_URL`` and ``SMARTCITY_DATABASE_URL`` (e.g. after ``eval "$(smartcity stack env)"``).
"""

from __future__ import annotations

import shlex

import typer
from rich.console import Console

from smartcity.errors import ConfigurationError
from smartcity.settings import get_settings

app = typer.Typer(help="Grafana dashboards and alert rules as code: build them, point a Grafana at them.",
                  no_args_is_help=True)
console = Console()


@app.command()
def build(check: bool = typer.Option(False, "--check", help="Change nothing; exit 1 if a file is not up to date.")) -> None:
    """Render the dashboards, data sources and alert rules into grafana/ (only files whose content changed)."""
    from grafana.build import build as write_files, render, stale

    if check:
        outdated = stale()
        for relative in outdated:
            console.print(f"[red]stale[/red] grafana/{relative}")
        if outdated:
            console.print("run `smartcity grafana build` and commit the result")
            raise typer.Exit(1)
        console.print(f"{len(render())} files up to date")
        return
    with console.status("rendering dashboards and provisioning files…"):
        written = write_files()
    for path in written:
        console.print(f"wrote {path}")
    console.print(f"{len(written)} file(s) written, the others were up to date")


@app.command()
def env() -> None:
    """Print `export ...` lines for a Grafana on this machine: provisioning folder, Prometheus, PostgreSQL."""
    from grafana.datasources import grafana_environment

    try:
        variables = grafana_environment(get_settings())
    except ConfigurationError as error:
        console.print(f"[red]error[/red] {error}")
        raise typer.Exit(1) from None
    for name, value in variables.items():
        typer.echo(f"export {name}={shlex.quote(value)}")


@app.command("apply-rbac")
def apply_rbac(
    url: str = typer.Option(..., "--url", help="Grafana's address, e.g. https://grafana.example.org."),
) -> None:
    """Create the teams and set the folder and data source permissions of grafana/rbac/rbac.json in a Grafana,
    through its HTTP API, with the service account token of the secret file grafana-api-token."""
    from grafana.access import rbac
    from grafana.apply_rbac import TOKEN_SECRET, GrafanaError, apply_rbac as apply
    from smartcity.settings import read_secret

    if not url.startswith(("http://", "https://")):
        typer.echo(f"error: --url {url!r} is not an http(s) address", err=True)
        raise typer.Exit(2)
    try:
        token = read_secret(TOKEN_SECRET).get_secret_value()
    except ConfigurationError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    try:
        applied = apply(url, token, rbac())
    except GrafanaError as error:
        console.print(f"[red]error[/red] {error}")
        raise typer.Exit(1) from None
    for line in applied.done:
        console.print(f"applied: {line}")
    for line in applied.not_applied:
        console.print(f"[yellow]not applied[/yellow]: {line}")
