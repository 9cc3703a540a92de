"""Backtest forecasting models on a city's own series: train on the first days, forecast every later timestamp.

The input is a long CSV ``series_id, timestamp, value`` (``series_id`` optional), read onto its regular grid by
:func:`~models.panel.panel_from_frame` (interval detected, gaps allowed). The first ``train_fraction`` of the
calendar days (local time) train every model; each observed timestamp after them is a forecast origin: the
models see the values at or before it only (the leakage tests check each model's part of that promise). A row of
the output is one forecast, ``series_id, origin, horizon_min, model, p10, p50, p90``; ``origin`` is the input's
own timestamp text of that observation, so forecasts join back to the input (and its offsets, or its naive
wall-clock times, are kept as they were).

Learned models run inside :class:`~models.fallback.WithFallback`: a series where one cannot beat the historical
average on held-out training days gets the historical average, and the report says which.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from models.base import Forecaster
from models.baselines import HistoricalAverage
from models.catalog import BASELINES, LEARNED, model_class
from models.fallback import WithFallback
from models.metrics import compare, score
from models.panel import BadSeriesInput, Panel, check_enough_history, panel_from_frame, parse_timestamps

COLUMNS = ("series_id", "origin", "horizon_min", "model", "p10", "p50", "p90")
PHASES = ("fit", "predict", "write")


@dataclass
class SeriesFile:
    """A CSV's series on their grid, and where each observation sits: its ``row``, grid ``step`` and text."""

    panel: Panel
    observed: pd.DataFrame  # row, step, label (the input's timestamp text); one per observed (series, step)


@dataclass
class Report:
    """What a backtest found: scores per model on the test part, and what each model said about itself."""

    train_end: int
    n_rows: int = 0
    scores: dict[str, list[dict]] = field(default_factory=dict)
    info: dict[str, dict] = field(default_factory=dict)
    seconds: dict[str, dict[str, float]] = field(default_factory=dict)


def read_series_csv(path: Path, timezone: str | None) -> SeriesFile:
    """The CSV's panel; BadSeriesInput names the column (or ``input``, ``timezone``) that cannot be read.
    ``timezone`` None: see :func:`~models.panel.parse_timestamps`."""
    try:
        ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSeriesInput("timezone", f"unknown time zone {timezone!r} (expected a name like Europe/Paris)")
    try:
        frame = pd.read_csv(path, dtype={"series_id": str, "timestamp": str})
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise BadSeriesInput("input", f"not a readable CSV file: {error}") from None
    if "timestamp" in frame.columns:
        frame["label"] = frame["timestamp"].astype(str).str.strip()
        frame["timestamp"] = parse_timestamps(frame["timestamp"], timezone)
        frame = frame.dropna(subset=["timestamp"])  # local times that a clock change skips or repeats
    panel = panel_from_frame(frame, timezone or "UTC")
    frame = frame.dropna(subset=["timestamp", "value"])
    observed = pd.DataFrame({
        "row": frame.get("series_id", pd.Series("series", index=frame.index)).astype(str)
                    .map({s: i for i, s in enumerate(panel.series_ids)}).to_numpy(),
        "time": frame["timestamp"].to_numpy(),
        "step": ((frame["timestamp"] - panel.start) // pd.Timedelta(minutes=panel.step_min)).to_numpy(),
        "label": frame["label"].to_numpy()})
    # the grid keeps a series' latest row in a step (rows off the grid are floored onto it): so does the label
    observed = observed.sort_values(["row", "time"], kind="stable").drop_duplicates(["row", "step"], keep="last")
    observed = observed[np.isfinite(panel.values[observed["row"], observed["step"]])]
    return SeriesFile(panel, observed.drop(columns="time"))


def parse_horizons(text: str) -> list[int]:
    """``15,30,60`` -> ``[15, 30, 60]``; BadSeriesInput (field ``horizons``) for anything else."""
    try:
        horizons = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadSeriesInput("horizons", f"{text!r} is not a comma-separated list of minutes") from None
    if not horizons:
        raise BadSeriesInput("horizons", "no horizon given")
    return horizons


def train_end_of(panel: Panel, horizons_min: list[int], train_fraction: float) -> int:
    """The first step of the test part (the first ``train_fraction`` of the calendar days train), once the
    horizons and the amount of data are checked."""
    panel.horizon_steps(horizons_min)  # refuses a horizon that is not a multiple of the interval
    if not 0 < train_fraction < 1:
        raise BadSeriesInput("train-fraction", f"{train_fraction:g} is not between 0 and 1 (exclusive)")
    days = panel.day_index()
    n_days = int(days[-1]) + 1
    train_days = int(np.floor(n_days * train_fraction + 1e-9))
    if train_days >= n_days:
        raise BadSeriesInput("train-fraction", f"{train_fraction:g} of {n_days} days leaves none to test on")
    train_end = int(np.searchsorted(days, train_days))
    check_enough_history(panel, train_end)
    return train_end


def forecasters(names: list[str], horizons_min: list[int], seed: int) -> dict[str, Forecaster]:
    """The models called ``names``, learned ones wrapped to fall back to the historical average where they lose."""
    models = {}
    for name in names:
        try:
            cls = model_class(name)
        except ImportError as error:
            raise BadSeriesInput("model", f"{name} cannot be loaded: {error}") from None
        model = cls(tuple(horizons_min), seed)
        models[name] = WithFallback(model) if name in LEARNED else model
    return models


def phase_count(names: list[str]) -> int:
    """How many phases :func:`run_backtest` goes through for these models."""
    return len(names) * len(PHASES) + sum(2 for b in BASELINES if b not in names)


Progress = Callable[[str, bool], None]
T = TypeVar("T")


def run_backtest(data: SeriesFile, models: dict[str, Forecaster], train_end: int, out: TextIO,
                 progress: Progress = lambda phase, done: None) -> Report:
    """Fit, forecast and write each of ``models`` (the baselines are also scored when not among them);
    ``progress`` hears of each phase of each model (``"xgboost: fit"``) as it starts and when it is done."""
    panel, report = data.panel, Report(train_end)
    horizons_min = list(next(iter(models.values())).horizons_min)
    origins = np.arange(train_end, panel.n_times)
    # a day at a time: a series unknown to a model takes its level from the values before the day's first origin
    days = np.split(origins, np.flatnonzero(np.diff(panel.day_index()[origins])) + 1)
    test = data.observed[data.observed["step"] >= train_end]
    at_origin = np.zeros((panel.n_series, len(origins)), dtype=bool)
    at_origin[test["row"], test["step"] - train_end] = True
    baselines = {**forecasters([b for b in BASELINES if b not in models], horizons_min, 0), **models}
    scored = {**{b: baselines[b] for b in BASELINES}, **models}  # the baselines first in the table
    for name, model in scored.items():
        seconds = report.seconds[name] = {}

        def phase(label: str, work: Callable[[], T]) -> T:
            progress(f"{name}: {label}", False)
            started = time.perf_counter()
            result = work()
            seconds[label] = time.perf_counter() - started
            progress(f"{name}: {label}", True)
            return result

        phase("fit", lambda: model.fit(panel, train_end))
        forecasts = phase("predict", lambda: np.concatenate([model.predict(panel, day) for day in days], axis=1))
        forecasts[~at_origin] = np.nan  # scored where a row is written: at observed origins only
        report.scores[name], report.info[name] = score(panel, origins, forecasts, horizons_min), model.info
        if name in models:
            report.n_rows += phase("write", lambda: write_forecasts(out, data, test, forecasts, train_end, name,
                                                                   horizons_min, header=report.n_rows == 0))
    return report


def write_forecasts(out: TextIO, data: SeriesFile, test: pd.DataFrame, forecasts: np.ndarray, train_end: int,
                    name: str, horizons_min: list[int], header: bool) -> int:
    """Append one model's forecasts at the observed test origins to ``out``; the number of rows written."""
    rows, cols = test["row"].to_numpy(), test["step"].to_numpy() - train_end
    picked = forecasts[rows, cols]  # [n_pairs, n_horizons, 3]
    n_h = len(horizons_min)
    frame = pd.DataFrame({
        "series_id": np.repeat(np.asarray(data.panel.series_ids, dtype=object)[rows], n_h),
        "origin": np.repeat(test["label"].to_numpy(), n_h),
        "horizon_min": np.tile(horizons_min, len(rows)),
        "model": name,
        "p10": picked[..., 0].ravel(), "p50": picked[..., 1].ravel(), "p90": picked[..., 2].ravel()})
    frame.to_csv(out, header=header, index=False, columns=list(COLUMNS), float_format="%.7g")
    return len(frame)


def summary(data: SeriesFile, report: Report, names: list[str]) -> str:
    """The closing report: the split, the scores beside the baselines, fallbacks and timings."""
    panel = data.panel
    test_days = int(panel.day_index()[-1] - panel.day_index()[report.train_end]) + 1
    lines = [f"{panel.n_series} series at a {panel.step_min}-minute interval; trained on the first "
             f"{int(panel.day_index()[report.train_end])} days, forecast from every observed timestamp of the "
             f"last {test_days} ({report.n_rows:,} forecasts written)", "",
             compare(report.scores, HistoricalAverage.name), ""]
    for name in names:
        fallback = report.info[name].get("fallback")
        if fallback and fallback.get("checked"):
            listed = ", ".join(fallback["series"][:10]) + (" ..." if fallback["count"] > 10 else "")
            lines.append(f"{name}: historical average kept for {fallback['count']} of {fallback['of']} series "
                         f"(not beaten on the last {fallback['holdout_days']} training days)"
                         + (f": {listed}" if listed else ""))
            calibrated = fallback["calibrated"]
            lines.append(f"{name}: P10-P90 calibrated on those days for {calibrated['series']} of {fallback['of']} "
                         f"series, their coverage there {_percent(calibrated['holdout_coverage_before'])} -> "
                         f"{_percent(calibrated['holdout_coverage_after'])} (nominal {calibrated['coverage']:.0%})")
        elif fallback:
            lines.append(f"{name}: no fallback check: {fallback['reason']}")
    lines.append("seconds: " + "; ".join(f"{name} fit {s['fit']:.1f}, predict {s['predict']:.1f}"
                                         for name, s in report.seconds.items()))
    return "\n".join(lines)


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"
