"""``smartcity models train | list | promote | rollback``: the registry's life cycle (mounted by :mod:`.models`).

``train`` fits the chosen models on the stored history of a target (the settings' database), scores them and
both baselines on a chronological holdout, saves them with their cards to the registry (the settings' object
store) and promotes the best if it beats the promoted model and the historical average (:mod:`models.training`);
with ``--every 6h`` it keeps doing so, starting as soon as enough history is stored (:mod:`models.schedule`).
A bad flag, an unknown target or version, or too little history: a message naming it, exit code 2.

The heavy libraries (pandas, xgboost, torch) are imported inside the commands.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from models.registry import Registry
    from smartcity.backends.database import Database

console = Console()
USAGE_ERROR = 2

Target = typer.Option("segment-speed", "--target", help="What to forecast: segment-speed, segment-flow, sensor-speed "
                                                         "or sensor-flow.")
DatabaseUrl = typer.Option(None, "--database-url", help="Default: SMARTCITY_DATABASE_URL.")
ObjectsUrl = typer.Option(None, "--objects-url", help="Default: SMARTCITY_OBJECTS_URL.")


def say(message: str) -> None:
    console.print(message, highlight=False, soft_wrap=True, markup=False)


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error; the exit to raise (code 2: the command was asked something it cannot do)."""
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(USAGE_ERROR)


@contextmanager
def opened(database_url: str | None, objects_url: str | None, with_database: bool = True
           ) -> Iterator[tuple[Database | None, Registry]]:
    """The settings' database (or the one named) and the registry in the object store; closed after."""
    from models.registry import Registry
    from smartcity.backends.database import open_database
    from smartcity.backends.objects import open_objects
    from smartcity.settings import get_settings

    settings = get_settings()
    objects = open_objects(objects_url or settings.objects_url, settings=settings)
    database = open_database(database_url or settings.database_url, settings=settings) if with_database else None
    try:
        yield database, Registry(objects)
    finally:
        for store in (database, objects):
            if store is not None:
                store.close()


def check_target(name: str) -> str:
    from models.panel import BadSeriesInput
    from models.targets import target_of

    try:
        return target_of(name).name
    except BadSeriesInput as error:
        raise fail(str(error)) from None


def train(target: str = Target,
          models: str = typer.Option("all", "--models", help="Comma-separated models to train "
                                                              "(xgboost, lstm, transformer), or all of them."),
          days: float = typer.Option(28, "--days", min=0, help="Days of stored history to use, ending at the newest."),
          holdout_days: float = typer.Option(3, "--holdout-days", min=0, help="The last days, held out to evaluate."),
          seed: int = typer.Option(0, "--seed", help="Random seed of the models."),
          promote: bool = typer.Option(True, "--promote/--no-promote",
                                       help="Promote the best model if it beats the promoted one and the historical "
                                            "average on the holdout."),
          every: str | None = typer.Option(None, "--every", help="Train again every period (e.g. 6h, 90m), starting "
                                                                 "when enough history exists; until Ctrl-C."),
          database_url: str | None = DatabaseUrl, objects_url: str | None = ObjectsUrl) -> None:
    """Train forecasting models on the stored history, evaluate them on a holdout, register and maybe promote."""
    from models.panel import BadSeriesInput
    from models.training import TrainingError, TrainingOptions, candidate_names

    try:
        names = candidate_names(models)
    except BadSeriesInput as error:
        raise fail(f"--models: {error.reason}") from None
    options = TrainingOptions(target=check_target(target), models=names, days=days, holdout_days=holdout_days,
                              seed=seed, promote=promote)
    if every is not None:
        run_every(every, options, database_url, objects_url)
        return
    from models.training import train as train_models

    with opened(database_url, objects_url) as (database, registry):
        try:
            result = train_models(database, registry, options, say=say)
        except TrainingError as error:
            raise fail(str(error)) from None
    if result.skipped:
        say(f"not trained: {', '.join(result.skipped)}")


def run_every(every: str, options, database_url: str | None, objects_url: str | None) -> None:
    """Train on a schedule in this process until interrupted."""
    from models.schedule import TrainingSchedule
    from models.training import TrainingError
    from smartcity.cli.simulate import parse_duration
    from smartcity.settings import get_settings

    try:
        every_s = parse_duration(every)
    except typer.BadParameter:
        raise fail(f"--every: {every!r} is not a period (a number with an optional unit s, m, h or d)") from None
    if every_s <= 0:
        raise fail("--every: the period must be positive")
    updates = {key: value for key, value in (("database_url", database_url), ("objects_url", objects_url)) if value}
    settings = get_settings().model_copy(update=updates)
    try:
        schedule = TrainingSchedule(settings, options, every_s, say=say)
    except TrainingError as error:
        raise fail(str(error)) from None
    say(f"training {options.target} every {every}, from when {schedule.min_days:g} days of history are stored; "
        "Ctrl-C stops")
    try:
        schedule.run()
    except KeyboardInterrupt:
        say("stopped")


def list_versions(target: str | None = typer.Option(None, "--target", help="Only this target (default: all)."),
                  objects_url: str | None = ObjectsUrl) -> None:
    """The registered versions of each target, oldest first: model, MAE per horizon beside the historical
    average's, training window, how many series the historical average serves instead, and which one is
    promoted (*)."""
    with opened(None, objects_url, with_database=False) as (_, registry):
        targets = [check_target(target)] if target else registry.targets()
        lines = []
        for name in targets:
            promoted = registry.promoted_version(name)
            for version in registry.versions(name):
                card = registry.card(name, version)
                average = card.get("baselines", {}).get("historical-average", {})
                lines.append(f"{'*' if version == promoted else ' '} {name:<13} {version}  {card['model']:<18} "
                             f"MAE {_maes(card.get('metrics', {}))}  (historical average {_maes(average)})  "
                             f"{_window(card.get('data', {}))}{_fallback(card.get('fallback'))}")
    say("\n".join(lines) if lines else f"no model registered{' for ' + target if target else ''}")


def promote(version: str = typer.Argument(..., help="The version to serve (see `smartcity models list`)."),
            target: str = Target, objects_url: str | None = ObjectsUrl) -> None:
    """Promote a registered version: serving picks it up without a restart."""
    from models.registry import RegistryError

    with opened(None, objects_url, with_database=False) as (_, registry):
        try:
            card = registry.promote(check_target(target), version)
        except RegistryError as error:
            raise fail(str(error)) from None
    say(f"promoted {card['model']} {version} for {target}")


def rollback(target: str = Target, objects_url: str | None = ObjectsUrl) -> None:
    """Serve the previously promoted version again."""
    from models.registry import RegistryError

    with opened(None, objects_url, with_database=False) as (_, registry):
        try:
            version = registry.rollback(check_target(target))
        except RegistryError as error:
            raise fail(str(error)) from None
        model = registry.card(target, version)["model"]
    say(f"rolled back {target} to {model} {version}")


def _maes(metrics: dict) -> str:
    return "  ".join(f"{h}: {m['mae']:.2f}" if m.get("mae") is not None else f"{h}: -" for h, m in metrics.items())


def _window(data: dict) -> str:
    return f"trained on {data['train_from'][:16]} .. {data['train_to'][:16]}" if "train_from" in data else ""


def _fallback(report: dict | None) -> str:
    """How many series a learned model leaves to the historical average (its card's fallback check)."""
    if not report:
        return ""
    if not report.get("checked"):
        return "  fallback not checked"
    return f"  historical average for {report['count']} of {report['of']} series"


COMMANDS = {"train": train, "list": list_versions, "promote": promote, "rollback": rollback}
