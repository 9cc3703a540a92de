"""``smartcity demo``: the live simulated city on embedded defaults (the README's first command).

``--duration`` wins over nothing else (the demo runs until Ctrl-C by default); the backends come from the settings,
with every embedded one placed under ``--data-dir``. The forecasting options have environment variables
(``SMARTCITY_DEMO_HISTORY_DAYS``, ``SMARTCITY_DEMO_TRAINING_MODELS``, ``SMARTCITY_DEMO_TRAINING_EVERY``); the flag
wins over the variable, which wins over the default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from smartcity.cli.simulate import parse_duration
from smartcity.demo import DEFAULT_DATA_DIR, Demo, DemoOptions, demo_settings
from smartcity.demo_clock import check_start
from smartcity.settings import get_settings

app = typer.Typer(help="Run the live simulated city: simulator -> functions -> streaming -> storage -> API.")


@app.callback(invoke_without_command=True)
def demo(
    duration: str = typer.Option(None, help="Wall time to run: 90s, 10m, 2h (default: until Ctrl-C)."),
    speed: float = typer.Option(1.0, min=0.1, help="City seconds per wall second."),
    start: str = typer.Option("busy", help="When the city starts: busy (the wall clock from 06:00 to 22:00 city "
                                           "time, otherwise 07:30, the morning peak, ahead of the clock; never "
                                           "before what the data folder holds), now (the wall clock), HH:MM today "
                                           "(city time), or an ISO 8601 moment with its offset."),
    data_dir: Path = typer.Option(DEFAULT_DATA_DIR, help="Folder of the embedded stores, secrets and checkpoints."),
    fresh: bool = typer.Option(False, help="Delete the data folder first (otherwise a run resumes the last one)."),
    streaming: bool = typer.Option(True, help="Run the Spark streaming jobs (--no-streaming: lighter, no aggregates, "
                                              "no forecasts)."),
    status_every: float = typer.Option(15.0, help="Seconds between status lines."),
    history: bool = typer.Option(True, help="Simulate the traffic history missing before the start, in the "
                                            "background (--no-history: only what is stored and what the demo adds)."),
    history_days: Optional[float] = typer.Option(None, min=0, help="Days of history before the start to make sure of "
                                                                   "(env SMARTCITY_DEMO_HISTORY_DAYS)"),
    training: bool = typer.Option(True, help="Train forecasting models on a schedule (--no-training: none)."),
    training_models: Optional[str] = typer.Option(
        None, help="Models to train: xgboost, lstm, transformer (comma-separated; the last two need the torch extra) "
                   "or all. (env SMARTCITY_DEMO_TRAINING_MODELS)"),
    training_every: Optional[str] = typer.Option(
        None, help="Wall time between training runs, the first as soon as enough history is stored. "
                   "(env SMARTCITY_DEMO_TRAINING_EVERY)"),
) -> None:
    """Simulate the city and run every function, the streaming jobs, the REST API and forecasting in this process."""
    console = Console(soft_wrap=True)
    base = get_settings()
    settings = demo_settings(base, data_dir.resolve())
    days = (history_days if history_days is not None else base.demo_history_days) if history else 0.0
    models = check_models(training_models if training_models is not None else base.demo_training_models) \
        if training else ""
    every = training_every if training_every is not None else base.demo_training_every
    options = DemoOptions(data_dir=data_dir.resolve(), fresh=fresh, speed=speed, start=check_city_start(start),
                          streaming=streaming,
                          duration_s=parse_duration(duration) if duration else None, status_every_s=status_every,
                          history_days=days, training_models=models, training_every_s=check_every(every))
    raise typer.Exit(Demo(settings, options, say=console.print).run())


def check_models(choice: str) -> str:
    """The models to train as given (``""`` for ``none``); a bad name is a usage error naming the known ones."""
    from models.panel import BadSeriesInput
    from models.training import candidate_names

    if choice.strip() in ("", "none"):
        return ""
    try:
        candidate_names(choice)
    except BadSeriesInput as error:
        raise typer.BadParameter(error.reason, param_hint="--training-models") from None
    return choice


def check_city_start(choice: str) -> str:
    try:
        return check_start(choice)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--start") from None


def check_every(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except typer.BadParameter as error:
        error.param_hint = "--training-every"
        raise
    if seconds <= 0:
        raise typer.BadParameter("the period must be positive", param_hint="--training-every")
    return seconds
