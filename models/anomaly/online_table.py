"""A CSV table of series for the self-learning detector (:mod:`models.anomaly.online`): what
``smartcity models anomaly-scores`` reads and scores. Rows stay in file order; each series is scored on its own."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.anomaly.online import MODELS, score_series


def check_model(model: str) -> None:
    """BadSeriesInput (field ``model``) for an unknown name, or the autoencoder without torch installed."""
    import importlib.util

    from models.panel import BadSeriesInput

    if model not in MODELS:
        raise BadSeriesInput("model", f"unknown model {model!r}; known: {', '.join(MODELS)}")
    if model == "autoencoder" and importlib.util.find_spec("torch") is None:
        raise BadSeriesInput("model", "the autoencoder trains with torch, which is not installed: "
                                      "pip install 'smartcity[torch]'")


def read_table(fields: list[str], rows: list[list[str]], timezone: str | None = "UTC") -> pd.DataFrame:
    """``series_id`` (optional), ``timestamp``, ``value`` of the CSV rows (text, header ``fields``) as a frame in
    file order: timestamps UTC, values float (an empty value or NaN is missing). BadSeriesInput names a missing
    column, an unparsable timestamp or value. ``timezone`` None: see :func:`~models.panel.parse_timestamps`."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from models.panel import BadSeriesInput, parse_timestamps

    try:
        ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise BadSeriesInput("timezone", f"unknown time zone {timezone!r} (expected a name like Europe/Paris)") from None
    names = [name.strip() for name in fields]
    for column in ("timestamp", "value"):
        if column not in names:
            raise BadSeriesInput(column, f"missing column (the file has {', '.join(names) or 'none'})")
    for number, row in enumerate(rows):
        if len(row) != len(names):
            raise BadSeriesInput("input", f"row {number + 2} of the file has {len(row)} fields, the header "
                                          f"{len(names)}")
    column = lambda name: pd.Series([row[names.index(name)].strip() for row in rows], dtype=object)
    if not rows:
        raise BadSeriesInput("input", "no rows")
    timestamps = parse_timestamps(column("timestamp"), timezone).ffill().bfill()
    text = column("value")
    values = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = values.isna() & (text != "") & (text.str.lower() != "nan")
    if bad.any():
        number = int(np.flatnonzero(bad.to_numpy())[0])
        raise BadSeriesInput("value", f"row {number + 2} of the file: {text.iloc[number]!r} is not a number")
    series = column("series_id") if "series_id" in names else pd.Series("series", index=values.index)
    return pd.DataFrame({"series_id": series.astype(str), "timestamp": timestamps, "value": values.astype(float)})


def score_table(table: pd.DataFrame, model: str = "ensemble", seed: int = 0, timezone: str = "UTC") -> np.ndarray:
    """The score of each row of :func:`read_table`'s frame, each series on its own, rows in file order."""
    check_model(model)
    scores = np.zeros(len(table))
    for _, rows in table.groupby("series_id", sort=False).indices.items():
        scores[rows] = score_series(table["timestamp"].iloc[rows], table["value"].to_numpy()[rows], model, seed,
                                    timezone)
    return scores
