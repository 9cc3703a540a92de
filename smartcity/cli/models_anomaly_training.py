"""``smartcity models train-anomaly``: fit anomaly detectors on the stored windows, evaluate them beside the robust
z-score on a holdout, register them and maybe promote one (:mod:`models.anomaly.training`); the
``detect-anomalies`` function serves the promoted one without a restart.

A bad flag, an unknown target or detector, or too little history: a message naming it, exit code 2. The heavy
libraries are imported inside the command.
"""

from __future__ import annotations

import typer

from smartcity.cli.models_training import DatabaseUrl, ObjectsUrl, fail, opened, say


def train_anomaly(
    target: str = typer.Option("anomaly-sensor", "--target", help="What to judge: anomaly-sensor (each sensor's "
                                                                  "windows) or anomaly-segment (each road segment's)."),
    detectors: str = typer.Option("all", "--detectors", help="Comma-separated detectors to train "
                                                             "(isolation-forest, autoencoder, zscore), or all learned."),
    days: float = typer.Option(28, "--days", min=0, help="Days of stored windows to use, ending at the newest."),
    holdout_days: float = typer.Option(3, "--holdout-days", min=0, help="The last days, held out to evaluate."),
    seed: int = typer.Option(0, "--seed", help="Random seed of the detectors."),
    promote: bool = typer.Option(True, "--promote/--no-promote",
                                 help="Promote the best detector if it separates incident windows better than the "
                                      "z-score and the promoted one on the holdout."),
    database_url: str | None = DatabaseUrl, objects_url: str | None = ObjectsUrl,
) -> None:
    """Train anomaly detectors on the stored windows, evaluate them beside the z-score, register and maybe promote."""
    from models.anomaly.catalog import AnomalyRegistry, detector_names
    from models.anomaly.history import anomaly_target
    from models.anomaly.training import AnomalyTrainingOptions, train_detectors
    from models.panel import BadSeriesInput
    from models.training import TrainingError
    from smartcity.settings import get_settings

    try:
        options = AnomalyTrainingOptions(target=anomaly_target(target).name, detectors=detector_names(detectors),
                                         days=days, holdout_days=holdout_days, seed=seed, promote=promote,
                                         threshold=get_settings().anomaly_threshold)
    except BadSeriesInput as error:
        raise fail(f"{'--detectors' if error.field == 'model' else '--target'}: {error.reason}") from None
    with opened(database_url, objects_url) as (database, registry):
        try:
            result = train_detectors(database, AnomalyRegistry(registry.objects), options, say=say)
        except TrainingError as error:
            raise fail(str(error)) from None
    if result.skipped:
        say(f"not trained: {', '.join(result.skipped)}")
