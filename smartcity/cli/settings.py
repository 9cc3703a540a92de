"""``smartcity settings``: every setting, its environment variable, its value here and what it is for."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from smartcity.settings import Settings, get_settings

app = typer.Typer(help="Show the platform's settings.")


@app.callback(invoke_without_command=True)
def show(markdown: bool = typer.Option(False, help="Print a Markdown table of names and defaults (for the README).")) -> None:
    """Print every setting with its environment variable and current value."""
    if markdown:
        typer.echo("| environment variable | default | what it is |\n|---|---|---|")
        for name, field in Settings.model_fields.items():
            typer.echo(f"| `SMARTCITY_{name.upper()}` | `{field.get_default(call_default_factory=True)}` | {field.description} |")
        return
    settings = get_settings()
    table = Table("environment variable", "value", "what it is")
    for name, field in Settings.model_fields.items():
        table.add_row(f"SMARTCITY_{name.upper()}", str(getattr(settings, name)), field.description or "")
    Console().print(table)
