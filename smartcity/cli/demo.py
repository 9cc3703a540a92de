"""``smartcity demo``: the live simulated city on embedded defaults (the README's first command).

``--duration`` wins over nothing else (the demo runs until Ctrl-C by default); the backends come from the settings,
with every embedded one placed under ``--data-dir``.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from smartcity.cli.simulate import parse_duration
from smartcity.demo import DEFAULT_DATA_DIR, Demo, DemoOptions, demo_settings
from smartcity.settings import get_settings

app = typer.Typer(help="Run the live simulated city: simulator -> functions -> streaming -> storage -> API.")


@app.callback(invoke_without_command=True)
def demo(
    duration: str = typer.Option(None, help="Wall time to run: 90s, 10m, 2h (default: until Ctrl-C)."),
    speed: float = typer.Option(1.0, min=0.1, help="City seconds per wall second."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="Folder of the embedded stores, secrets and checkpoints."),
    fresh: bool = typer.Option(False, help="Delete the data folder first (otherwise a run resumes the last one)."),
    streaming: bool = typer.Option(True, help="Run the Spark streaming jobs (--no-streaming: lighter, no aggregates)."),
    status_every: float = typer.Option(15.0, help="Seconds between status lines."),
) -> None:
    """Simulate the city and run every function, the streaming jobs and the REST API in this process."""
    console = Console(soft_wrap=True)
    settings = demo_settings(get_settings(), data_dir.resolve())
    options = DemoOptions(data_dir=data_dir.resolve(), fresh=fresh, speed=speed, streaming=streaming,
                          duration_s=parse_duration(duration) if duration else None, status_every_s=status_every)
    raise typer.Exit(Demo(settings, options, say=console.print).run())
