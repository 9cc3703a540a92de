"""``smartcity models``: train, list, promote and roll back forecasting models; backtest any data set.

The commands live in two modules: :mod:`smartcity.cli.models_training` (the registry's life cycle) and
:mod:`smartcity.cli.models_backtest` (a city's own CSV). Both import the heavy libraries inside the commands, so
``smartcity --help`` stays fast and never imports torch.
"""

from __future__ import annotations

import typer

from smartcity.cli import models_anomaly, models_anomaly_training, models_backtest, models_training

app = typer.Typer(help="Forecasting models: scheduled training, registry, backtests.", no_args_is_help=True)
app.command("backtest")(models_backtest.backtest)
app.command("anomaly-scores")(models_anomaly.anomaly_scores)
app.command("train-anomaly")(models_anomaly_training.train_anomaly)
for name, command in models_training.COMMANDS.items():
    app.command(name)(command)
