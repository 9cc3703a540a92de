"""The ``smartcity`` command: one typer app, one module per subcommand group in this package."""

from __future__ import annotations

import importlib

import typer
from rich.markup import escape

from smartcity.extras import MissingExtra

app = typer.Typer(
    help="Smart-city data platform: local services, functions, simulator, streaming, API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# Command name -> module of smartcity.cli holding its typer app, or its one command's function, as ``app``.
GROUPS = {
    "settings": "settings", "token": "api", "schemas": "schemas", "simulate": "simulate", "stack": "stack",
    "db": "db", "backup": "backup", "functions": "functions", "streaming": "streaming", "grafana": "grafana",
    "demo": "demo", "history": "history", "models": "models", "connect": "connect", "city": "city",
    "logs": "logs", "new-stream": "new_stream", "keys": "keys",
}


def needs_extra(error: MissingExtra):
    """A command standing for a group whose extra is not installed: it says which one to install (exit 2)."""

    def explain() -> None:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2)

    return explain


for name, module in GROUPS.items():
    try:
        command = importlib.import_module(f"smartcity.cli.{module}").app
        if isinstance(command, typer.Typer):
            app.add_typer(command, name=name)
        else:  # one command with its own arguments (connect, new-stream): not a group, so no COMMAND in its usage
            app.command(name)(command)
    except MissingExtra as error:  # the other commands still work
        app.command(name, help=f"Not installed: {escape(error.install_command)}", add_help_option=False,
                    context_settings={"ignore_unknown_options": True, "allow_extra_args": True})(needs_extra(error))


def main() -> None:
    app()
