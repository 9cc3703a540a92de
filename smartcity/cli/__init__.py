"""The ``smartcity`` command: one typer app, one module per subcommand group in this package."""

from __future__ import annotations

import typer

from smartcity.cli import (
    api, backup, db, demo, functions, grafana, history, models, schemas, settings, simulate, stack, streaming,
)

app = typer.Typer(
    help="Smart-city data platform: local services, functions, simulator, streaming, API.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

app.add_typer(settings.app, name="settings")
app.add_typer(api.app, name="token")
app.add_typer(schemas.app, name="schemas")
app.add_typer(simulate.app, name="simulate")
app.add_typer(stack.app, name="stack")
app.add_typer(db.app, name="db")
app.add_typer(backup.app, name="backup")
app.add_typer(functions.app, name="functions")
app.add_typer(streaming.app, name="streaming")
app.add_typer(grafana.app, name="grafana")
app.add_typer(demo.app, name="demo")
app.add_typer(history.app, name="history")
app.add_typer(models.app, name="models")


def main() -> None:
    app()
