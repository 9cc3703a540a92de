"""One anomaly training run: stored windows -> fitted detectors with their cards in the registry -> maybe a promotion.

:func:`train_detectors` reads the last ``days`` of an anomaly target's stored 5-minute windows (ending at the
newest one, as :mod:`models.training` does), holds out the last ``holdout_days``, fits the chosen detectors and
the robust z-score on the rest, and scores every one on the holdout (each window from its own context only).
There are no labels; a detector is judged by what its scores do on the holdout, at the alert threshold:

``flag_rate``
    the share of holdout windows flagged; a calibrated detector flags about ``1 - threshold`` of normal windows;
``incident_recall``, ``false_alarm_rate``, ``separation``
    the share flagged of the windows during a reported incident on the series' road segment
    (``incident_reports``, as :func:`models.targets.load_panel` reads them: detectors' own alerts left out), the
    share flagged of the others, and the first minus the second; None when the holdout holds no incident;
``score_p50``, ``score_p90``, ``score_p99``
    the score distribution.

Each detector is saved to the :class:`~models.anomaly.catalog.AnomalyRegistry` with a card (data window, what it
learned, its holdout figures beside the z-score's, library versions, code revision, training time). Promotion:
among the learned detectors whose false-alarm rate stays within :data:`MAX_FALSE_ALARM_FACTOR` times the nominal
one, the best separation wins if it beats the z-score's and the promoted detector's on the same holdout. A holdout
without incidents cannot rank them: only a first detector is promoted then (the one whose flag rate is nearest
the nominal). The result says why.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from models.anomaly.base import ALERT_THRESHOLD, STEP_MIN, Detector
from models.anomaly.catalog import BASELINE, LEARNED, AnomalyRegistry, detector_class
from models.anomaly.history import anomaly_target, load_frame
from models.targets import load_panel
from models.training import TrainingError, code_revision, library_versions, stored_window
from smartcity.backends.database import Database

Say = Callable[[str], None]
MIN_TRAIN_DAYS = 1.0  # the z-score needs six same-hour windows: one day holds twelve
MAX_FALSE_ALARM_FACTOR = 5.0


@dataclass(frozen=True)
class AnomalyTrainingOptions:
    target: str = "anomaly-sensor"
    detectors: tuple[str, ...] = LEARNED
    days: float = 28
    holdout_days: float = 3
    seed: int = 0
    promote: bool = True
    threshold: float = ALERT_THRESHOLD


@dataclass
class AnomalyTrainingResult:
    target: str
    data: dict[str, Any]
    evaluation: dict[str, dict[str, float | None]] = field(default_factory=dict)  # detector -> figure -> value
    versions: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    promoted: str | None = None
    decision: str = ""


def train_detectors(database: Database, registry: AnomalyRegistry, options: AnomalyTrainingOptions,
                    say: Say = lambda message: None) -> AnomalyTrainingResult:
    """Fit, evaluate, save and maybe promote; TrainingError when there is too little history or nothing trained."""
    target = anomaly_target(options.target)
    frame, holdout_from = _history(database, options)
    train, holdout = frame[frame["window_start"] < holdout_from], frame["window_start"] >= holdout_from
    incidents = _incident_windows(database, target, frame.loc[holdout])
    data = _data_card(frame, holdout_from, target.name)
    result = AnomalyTrainingResult(target.name, data)
    say(f"{target.name}: {data['series']} series, training {data['train_from']} .. {data['holdout_from']}, "
        f"holdout {data['holdout_from']} .. {data['to']}")
    for name in dict.fromkeys((BASELINE, *options.detectors)):
        fitted = _fit(name, train, options, say, result)
        if fitted is None:
            continue
        detector, seconds = fitted
        result.evaluation[name] = evaluate(detector, frame, holdout, incidents, options.threshold)
        if name not in options.detectors:  # the baseline, evaluated only
            continue
        card = {"data": data, "features": detector.info, "evaluation": result.evaluation[name],
                "baselines": {BASELINE: result.evaluation.get(BASELINE)}, "threshold": options.threshold,
                "libraries": {**library_versions(), **_sklearn()}, "code_revision": code_revision(),
                "training_time_s": round(seconds, 2), "trained_at": datetime.now(timezone.utc).isoformat(),
                "seed": options.seed}
        result.versions[name] = registry.save(target.name, detector, card)
        say(f"{name}: version {result.versions[name]}, {_figures(result.evaluation[name])}, "
            f"trained in {seconds:.1f} s")
    if not result.versions:
        why = "; ".join(f"{name}: {reason}" for name, reason in result.skipped.items())
        raise TrainingError(f"no detector could be trained: {why}")
    if BASELINE in result.evaluation:
        say(f"{BASELINE} (baseline): {_figures(result.evaluation[BASELINE])}")
    _decide(registry, frame, holdout, incidents, options, result)
    say(result.decision)
    return result


def evaluate(detector: Detector, frame: pd.DataFrame, holdout: pd.Series, incidents: np.ndarray,
             threshold: float) -> dict[str, float | None]:
    """The holdout figures of ``detector`` (module docstring): it scores ``frame`` from the context before the
    holdout on, and is judged on the ``holdout`` rows; ``incidents`` flags those rows."""
    first = frame.loc[holdout, "window_start"].min() - detector.context_steps() * pd.Timedelta(minutes=STEP_MIN)
    scored = detector.score(frame[frame["window_start"] >= first])
    scores = scored["anomaly_score"].reindex(frame.index[holdout]).to_numpy(np.float64)
    known = np.isfinite(scores)
    flagged = scores >= threshold
    during, outside = incidents & known, ~incidents & known
    recall = float(flagged[during].mean()) if during.any() else None
    false_alarm = float(flagged[outside].mean()) if outside.any() else None
    quantiles = np.quantile(scores[known], (0.5, 0.9, 0.99)) if known.any() else (np.nan,) * 3
    return {"windows": int(known.sum()), "flag_rate": float(flagged[known].mean()) if known.any() else None,
            "incident_windows": int(during.sum()), "incident_recall": recall, "false_alarm_rate": false_alarm,
            "separation": None if recall is None or false_alarm is None else recall - false_alarm,
            **{f"score_p{q}": float(v) for q, v in zip((50, 90, 99), quantiles)}}


def _history(database: Database, options: AnomalyTrainingOptions) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The frame of the training window and the moment its holdout starts."""
    target = anomaly_target(options.target)
    since, end = stored_window(database, target, options, MIN_TRAIN_DAYS)
    frame = load_frame(database, target, since, end)
    return frame, pd.Timestamp(end - timedelta(days=options.holdout_days))


def _incident_windows(database: Database, target, holdout: pd.DataFrame) -> np.ndarray:
    """Per holdout row: whether a reported incident was active on its series' road segment."""
    if holdout.empty:
        return np.zeros(0, dtype=bool)
    since, until = holdout["window_start"].min(), holdout["window_start"].max() + pd.Timedelta(minutes=STEP_MIN)
    panel = load_panel(database, "segment-speed" if target.per_segment else "sensor-speed", since.to_pydatetime(),
                       until.to_pydatetime(), series_ids=sorted(holdout["series_id"].unique()))
    row_of = {series: row for row, series in enumerate(panel.series_ids)}
    steps = ((holdout["window_start"] - panel.start) // pd.Timedelta(minutes=panel.step_min)).to_numpy()
    return panel.exog["incident"][holdout["series_id"].map(row_of).to_numpy(), steps] > 0


def _fit(name: str, train: pd.DataFrame, options: AnomalyTrainingOptions, say: Say,
         result: AnomalyTrainingResult) -> tuple[Detector, float] | None:
    started = time.perf_counter()
    try:
        detector = detector_class(name)(seed=options.seed).fit(train)
    except ImportError as error:  # the detector's training needs an extra (torch) that is not installed
        missing = isinstance(error, ModuleNotFoundError)
        hint = " (install the extras: pip install -e '.[models,torch]')" if missing else ""
        result.skipped[name] = f"{error}{hint}"
    except Exception as error:  # one detector failing must not cost the others
        result.skipped[name] = f"training failed: {error!r}"
    else:
        return detector, time.perf_counter() - started
    say(f"{name}: skipped, {result.skipped[name]}")
    return None


def _decide(registry: AnomalyRegistry, frame: pd.DataFrame, holdout: pd.Series, incidents: np.ndarray,
            options: AnomalyTrainingOptions, result: AnomalyTrainingResult) -> None:
    nominal = 1 - options.threshold
    limit = MAX_FALSE_ALARM_FACTOR * nominal
    calibrated = {name: result.evaluation[name] for name in result.versions
                  if (result.evaluation[name]["false_alarm_rate"] or 0.0) <= limit}
    if not calibrated:
        result.decision = (f"not promoted: every new detector flags more than {limit:.1%} of the holdout's windows "
                           "outside incidents")
        return
    current = registry.promoted(result.target)
    if not incidents.any():
        if current is not None:
            result.decision = ("not promoted: the holdout holds no reported incident to compare the new detectors "
                               f"with the promoted {current[1]['model']} {current[0]} on")
            return
        best = min(calibrated, key=lambda name: abs((calibrated[name]["flag_rate"] or 0.0) - nominal))
        _promote(registry, options, result, best, "the first detector of this target, its flag rate nearest "
                                                  f"the nominal {nominal:.1%} (no incident in the holdout to rank on)")
        return
    best = max(calibrated, key=lambda name: calibrated[name]["separation"])
    separation = calibrated[best]["separation"]
    baseline = (result.evaluation.get(BASELINE) or {}).get("separation")
    if baseline is not None and not separation > baseline:
        result.decision = (f"not promoted: the best new detector, {best}, separates incident windows by "
                           f"{separation:.3f}, not more than the z-score's {baseline:.3f}")
        return
    if current is not None:
        version, card = current
        try:
            theirs = evaluate(registry.load(result.target, version), frame, holdout, incidents, options.threshold)
        except Exception as error:  # it cannot be compared: leave the decision to a person
            result.decision = (f"not promoted: the promoted {card['model']} {version} fails to load or score: {error}")
            return
        result.evaluation[f"promoted {card['model']}"] = theirs
        if theirs["separation"] is not None and not separation > theirs["separation"]:
            result.decision = (f"not promoted: the best new detector, {best}, separates incident windows by "
                               f"{separation:.3f}, not more than the promoted {card['model']} {version}'s "
                               f"{theirs['separation']:.3f}")
            return
    _promote(registry, options, result, best, f"separation {separation:.3f} (z-score: "
                                              f"{'-' if baseline is None else f'{baseline:.3f}'})")


def _promote(registry: AnomalyRegistry, options: AnomalyTrainingOptions, result: AnomalyTrainingResult, name: str,
             why: str) -> None:
    version = result.versions[name]
    if not options.promote:
        result.decision = f"not promoted (--no-promote): the best new detector is {name} {version}, {why}"
        return
    registry.promote(result.target, version)
    result.promoted = version
    result.decision = f"promoted {name} {version}: {why}"


def _data_card(frame: pd.DataFrame, holdout_from: pd.Timestamp, target: str) -> dict[str, Any]:
    starts = frame["window_start"]
    return {"target": target, "from": starts.min().isoformat(),
            "to": (starts.max() + pd.Timedelta(minutes=STEP_MIN)).isoformat(), "train_from": starts.min().isoformat(),
            "holdout_from": holdout_from.isoformat(), "series": int(frame["series_id"].nunique()),
            "windows": len(frame), "step_min": STEP_MIN}


def _figures(evaluation: dict[str, float | None]) -> str:
    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    return ", ".join(f"{name} {show(evaluation[name])}" for name in
                     ("flag_rate", "incident_recall", "false_alarm_rate", "separation", "score_p99"))


def _sklearn() -> dict[str, str]:
    import sklearn

    return {"scikit-learn": sklearn.__version__}
