"""One training run: stored history -> fitted models with their cards in the registry -> maybe a promotion.

:func:`train` reads the last ``days`` of a target's stored 5-minute history (ending at the newest window, not at
the wall clock: generated history may lie in the past), splits it in time (the last ``holdout_days`` are the
holdout, the rest trains), fits every candidate model and the two baselines on the training part, and scores all
of them on the holdout: each forecast origin in the holdout predicts every horizon from what was known then.

Each learned candidate (xgboost, lstm, transformer) is fitted inside :class:`~models.fallback.WithFallback`, as
in the backtest: a trial fit on all but the last fifth of the training days finds the series where it does not
beat the historical average (served the historical average there) and calibrates every series' P10-P90 interval
on those days. The trial fit makes training take up to twice as long; the baselines are fitted bare.

Each candidate is saved to the :class:`~models.registry.Registry` with its model card: the data window, the
features (``model.info``), the fallback check and calibration (``fallback``: how many series fall back, the first
of them, the held-out MAEs and coverage), its metrics per horizon beside both baselines' on the same holdout,
library versions, the code revision and the training time. The model evaluated on the holdout is the artifact (no
refit on all the data), so its card's figures are the artifact's own.

Promotion: the candidate with the lowest mean MAE over the horizons is promoted only if it beats the historical
average and the currently promoted model, which is loaded from the registry and scored on the same holdout. The
result says why a model was not promoted.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from models import catalog
from models.base import DEFAULT_HORIZONS_MIN, Forecaster
from models.fallback import WithFallback
from models.panel import MIN_DAYS, BadSeriesInput, Panel, check_enough_history
from models.metrics import compare, score
from models.registry import Registry
from models.targets import Target, history_span, load_panel, target_of
from smartcity.backends.database import Database

Say = Callable[[str], None]
LIBRARIES = ("numpy", "pandas", "xgboost", "onnxruntime", "torch")
BASELINE_TO_BEAT = "historical-average"


class TrainingError(Exception):
    """Training cannot run as asked (too little history, no model could be trained): the message says why."""


@dataclass(frozen=True)
class TrainingOptions:
    target: str = "segment-speed"
    models: tuple[str, ...] = catalog.LEARNED
    days: float = 28
    holdout_days: float = 3
    seed: int = 0
    promote: bool = True
    horizons_min: tuple[int, ...] = DEFAULT_HORIZONS_MIN


@dataclass
class TrainingResult:
    target: str
    data: dict[str, Any]
    metrics: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # model -> horizon -> metric
    versions: dict[str, str] = field(default_factory=dict)  # model -> version saved
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it was not trained
    promoted: str | None = None
    decision: str = ""


def candidate_names(choice: str) -> tuple[str, ...]:
    """``all`` (the learned models) or a comma-separated list of model names (checked)."""
    return catalog.LEARNED if choice.strip() == "all" else tuple(catalog.model_names(choice))


def train(database: Database, registry: Registry, options: TrainingOptions, say: Say = lambda message: None
          ) -> TrainingResult:
    """Fit, score, save and maybe promote; TrainingError when there is too little history or nothing trained."""
    target = target_of(options.target)
    panel, train_end = training_panel(database, target.name, options)
    origins = holdout_origins(panel, train_end)
    data = _data_card(panel, train_end, target.name)
    result = TrainingResult(target.name, data)
    say(f"{target.name}: {panel.n_series} series, training {data['train_from']} .. {data['train_to']}, "
        f"holdout {data['holdout_from']} .. {data['holdout_to']}")
    baselines = {}
    for name in catalog.BASELINES:
        model = catalog.model_class(name)(options.horizons_min, options.seed).fit(panel, train_end)
        baselines[name] = result.metrics[name] = holdout_metrics(model, panel, origins)
    for name in options.models:
        fitted = _fit(name, panel, train_end, options, say, result)
        if fitted is None:
            continue
        model, seconds = fitted
        result.metrics[name] = holdout_metrics(model, panel, origins)
        features = dict(model.info)
        checked = {"fallback": features.pop("fallback")} if "fallback" in features else {}
        card = {"data": data, "features": features, **checked, "metrics": result.metrics[name],
                "mean_mae": mean_mae(result.metrics[name]), "baselines": baselines, "libraries": library_versions(),
                "code_revision": code_revision(), "training_time_s": round(seconds, 2),
                "trained_at": datetime.now(timezone.utc).isoformat(), "seed": options.seed}
        result.versions[name] = registry.save(target.name, model, card)
        say(f"{name}: version {result.versions[name]}, MAE {_per_horizon(result.metrics[name])} "
            f"(historical average {_per_horizon(baselines[BASELINE_TO_BEAT])}), trained in {seconds:.1f} s"
            f"{_fallback_note(checked.get('fallback'))}")
    if not result.versions:
        raise TrainingError(f"no model could be trained: {'; '.join(f'{k}: {v}' for k, v in result.skipped.items())}")
    _decide(registry, panel, origins, options, result, say)
    say(comparison(result.metrics))
    say(result.decision)
    return result


def days_needed(options: TrainingOptions, min_train_days: float = MIN_DAYS) -> float:
    """The days of history a run needs (to train and to hold out); TrainingError when the options ask for less."""
    needed = options.holdout_days + min_train_days
    if options.holdout_days <= 0:
        raise TrainingError(f"--holdout-days must be positive, not {options.holdout_days:g}")
    if options.days < needed:
        raise TrainingError(f"--days {options.days:g} leaves less than {min_train_days:g} days to train on beside "
                            f"--holdout-days {options.holdout_days:g}: at least {needed:g} days are needed")
    return needed


def stored_window(database: Database, target: Target, options: TrainingOptions,
                  min_train_days: float = MIN_DAYS) -> tuple[datetime, datetime]:
    """The newest ``options.days`` of ``target``'s stored history, as (first window start, last window end), for
    forecasters and anomaly detectors alike; TrainingError naming what is missing when less is stored."""
    needed = days_needed(options, min_train_days)
    span = history_span(database, target)
    if span is None:
        raise TrainingError(f"no stored history of {target.name} ({target.table}): run the platform a while, or "
                            f"`smartcity history generate --days {options.days:g}`")
    first, end = span
    stored = (end - first) / timedelta(days=1)
    if stored < needed:
        raise TrainingError(f"too little history of {target.name}: {stored:.1f} days stored ({first:%Y-%m-%d %H:%M} "
                            f".. {end:%Y-%m-%d %H:%M} UTC), {needed:g} needed ({min_train_days:g} to train, "
                            f"--holdout-days {options.holdout_days:g} to evaluate)")
    return max(first, end - timedelta(days=options.days)), end


def training_panel(database: Database, target: str, options: TrainingOptions) -> tuple[Panel, int]:
    """The panel of the training window and the index where its holdout starts (its origins:
    :func:`holdout_origins`)."""
    since, end = stored_window(database, target_of(target), options)
    panel = load_panel(database, target, since, end)
    train_end = panel.n_times - int(round(options.holdout_days * panel.steps_per_day))
    try:
        check_enough_history(panel, train_end)
    except BadSeriesInput as error:
        raise TrainingError(f"{target}: {error.reason}") from None
    return panel, train_end


def _fit(name: str, panel: Panel, train_end: int, options: TrainingOptions, say: Say,
         result: TrainingResult) -> tuple[Forecaster, float] | None:
    """The fitted model and its training seconds; None (and why, in ``result.skipped``) when it cannot train."""
    started = time.perf_counter()
    try:
        model = catalog.model_class(name)(options.horizons_min, options.seed)
        model = (WithFallback(model) if name in catalog.LEARNED else model).fit(panel, train_end)
    except ImportError as error:  # the model's module or its training needs an extra (torch) that is not installed
        hint = " (install the extras: pip install -e '.[models,torch]')" if isinstance(error, ModuleNotFoundError) else ""
        result.skipped[name] = f"{error}{hint}"
    except Exception as error:  # one model failing must not cost the others (the scheduled runs go on)
        result.skipped[name] = f"training failed: {error!r}"
    else:
        return model, time.perf_counter() - started
    say(f"{name}: skipped, {result.skipped[name]}")
    return None


def _decide(registry: Registry, panel: Panel, origins: np.ndarray, options: TrainingOptions,
            result: TrainingResult, say: Say) -> None:
    """Promote the best new model if it beats the historical average and the promoted model on this holdout."""
    best = min(result.versions, key=lambda name: mean_mae(result.metrics[name]))
    best_mae, version = mean_mae(result.metrics[best]), result.versions[best]
    reference = mean_mae(result.metrics[BASELINE_TO_BEAT])
    if not best_mae < reference:
        result.decision = (f"not promoted: the best new model, {best} {version}, has a mean MAE of {best_mae:.3f}, "
                           f"not below the historical average's {reference:.3f}")
        return
    current = registry.promoted(result.target)
    if current is not None:
        current_version, card = current
        horizons = [str(h) for h in options.horizons_min]
        try:
            current_metrics = holdout_metrics(registry.load(result.target, current_version), panel, origins)
        except Exception as error:  # whatever breaks it, it cannot be compared: leave the decision to a person
            result.decision = (f"not promoted: {best} {version} (mean MAE {best_mae:.3f}) could not be compared with "
                               f"the promoted {card['model']} {current_version}, which fails to load or predict: {error}")
            return
        result.metrics[f"promoted {card['model']}"] = current_metrics
        if card.get("data", {}).get("train_to", "") > result.data["holdout_from"]:
            say(f"note: the promoted {card['model']} {current_version} was trained on part of this holdout, "
                "which favours it in the comparison")
        current_mae = mean_mae({h: current_metrics[h] for h in horizons if h in current_metrics})
        new_mae = mean_mae({h: result.metrics[best][h] for h in horizons if h in current_metrics})
        if not new_mae < current_mae:
            result.decision = (f"not promoted: the best new model, {best} {version}, has a mean MAE of {new_mae:.3f} "
                               f"on this holdout, not below the promoted {card['model']} {current_version}'s "
                               f"{current_mae:.3f}")
            return
    if not options.promote:
        result.decision = f"not promoted (--no-promote): the best new model is {best} {version}, mean MAE {best_mae:.3f}"
        return
    registry.promote(result.target, version)
    result.promoted = version
    beaten = f"; the promoted model was {current[1]['model']} {current[0]}" if current else ""
    result.decision = (f"promoted {best} {version}: mean MAE {best_mae:.3f} against the historical average's "
                       f"{reference:.3f}{beaten}")


def holdout_origins(panel: Panel, train_end: int) -> np.ndarray:
    """The forecast origins scored on the holdout: the last training window and every holdout window but the last."""
    return np.arange(train_end - 1, panel.n_times - 1)


def holdout_metrics(model: Forecaster, panel: Panel, origins: np.ndarray) -> dict[str, dict[str, float]]:
    """Per horizon (minutes, as text): :func:`models.metrics.score`'s MAE, RMSE, MAPE, P10-P90 coverage, pinball
    loss and the number of forecasts scored, over every series and origin whose target value is known."""
    rows = score(panel, origins, model.predict(panel, origins), model.horizons_min)
    return {str(row["horizon_min"]): {k: v for k, v in row.items() if k != "horizon_min"} for row in rows}


def mean_mae(metrics: dict[str, dict[str, Any]]) -> float:
    """The mean over horizons of the MAE; infinite when a horizon has none (such a model never wins)."""
    values = [m["mae"] for m in metrics.values()]
    finite = values and all(v is not None and np.isfinite(v) for v in values)
    return float(np.mean(values)) if finite else float("inf")


def comparison(metrics: dict[str, dict[str, dict[str, float]]]) -> str:
    """Every model's holdout metrics side by side (:func:`models.metrics.compare`)."""
    return compare({name: [{"horizon_min": int(h), **m} for h, m in per_horizon.items()]
                    for name, per_horizon in metrics.items()}, BASELINE_TO_BEAT)


def library_versions() -> dict[str, str]:
    """Python and the versions of the numerical libraries this process has imported."""
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        module = sys.modules.get(name)
        if module is not None:
            versions[name] = getattr(module, "__version__", "unknown")
    return versions


def code_revision() -> str:
    """The git commit of the code (``+dirty`` with uncommitted changes), else the package version."""
    from smartcity import __version__
    from smartcity.settings import PROJECT_ROOT

    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"smartcity {__version__}"
    return head + ("+dirty" if dirty else "")


def _data_card(panel: Panel, train_end: int, target: str) -> dict[str, Any]:
    times = panel.times()
    step = timedelta(minutes=panel.step_min)
    return {"target": target, "from": times[0].isoformat(), "to": (times[-1] + step).isoformat(),
            "train_from": times[0].isoformat(), "train_to": times[train_end].isoformat(),
            "holdout_from": times[train_end].isoformat(), "holdout_to": (times[-1] + step).isoformat(),
            "series": panel.n_series, "step_min": panel.step_min, "timezone": panel.timezone,
            "values": int(np.isfinite(panel.values).sum()), "covariates": sorted(panel.exog),
            "neighbours": bool(panel.upstream)}


def _fallback_note(report: dict[str, Any] | None) -> str:
    """What the fallback check of a wrapped model found, for the run's output ("" for a bare model)."""
    if report is None:
        return ""
    if not report["checked"]:
        return f"; every series served by the model ({report['reason']})"
    return (f"; the historical average serves {report['count']} of {report['of']} series, P10-P90 calibrated for "
            f"{report['calibrated']['series']}")


def _per_horizon(metrics: dict[str, dict[str, Any]]) -> str:
    return ", ".join(f"{h} min {m['mae']:.3f}" for h, m in metrics.items())
