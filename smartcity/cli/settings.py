"""``smartcity settings``: every setting, its environment variable, its value here and what it is for."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from smartcity.settings import PROJECT_ROOT, Settings, get_settings

app = typer.Typer(help="Show the platform's settings.")


@app.callback(invoke_without_command=True)
def show(markdown: bool = typer.Option(
        False, help="Print a Markdown table of names and defaults (for docs/settings.md).")) -> None:
    """Print every setting with its environment variable and current value."""
    if markdown:
        typer.echo(markdown_table())
        return
    settings = get_settings()
    table = Table("environment variable", "value", "what it is")
    for name, field in Settings.model_fields.items():
        table.add_row(f"SMARTCITY_{name.upper()}", str(getattr(settings, name)), field.description or "")
    Console().print(table)


def markdown_table() -> str:
    """Every setting's variable, default and description, as docs/settings.md's table (paths relative to the repo)."""
    lines = ["| environment variable | default | what it is |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = str(field.get_default(call_default_factory=True))
        default = default.replace(str(PROJECT_ROOT), "<repo>").replace(str(Path.home()), "~")
        description = (field.description or "").replace("|", "\\|")
        lines.append(f"| `SMARTCITY_{name.upper()}` | `{default}` | {description} |")
    return "\n".join(lines)
