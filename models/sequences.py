"""The inputs of the sequence models (LSTM, Transformer), built the same way for training and for serving.

For each (series, origin) the models read a context window of the last ``C`` steps up to and including the origin
(nothing after it), one row per step with the channels of :data:`CHANNELS`:

- ``residual``: how far the value was from the historical average then, ``(y - HA) / level`` (0 when missing);
- ``missing``: 1 where the value is missing (or before the panel's start);
- ``value``: the value itself, ``y / level`` (0 when missing);
- ``tod_sin``, ``tod_cos``: the time of day (local time) on a circle; ``weekend``: 1 on Saturday and Sunday.

Beside the window, the known future: the historical average at each horizon's target time, ``HA / level``. The
target is the residual at each horizon, so a model learns how today's deviation from the usual decays, and
``level`` (the series' mean over its profile) puts every series on one scale. Serving turns a forecast back
with ``HA + residual * level``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from models.baselines import Profiles
from models.panel import Panel

CHANNELS = ("residual", "missing", "value", "tod_sin", "tod_cos", "weekend")
CONTEXT_MIN = 180
MIN_CONTEXT_STEPS = 4
# Normalised inputs beyond this are outliers (a glitching sensor): clipped so that one cannot swamp a batch.
CLIP = 10.0


def context_steps(step_min: int, context_min: int = CONTEXT_MIN) -> int:
    """Steps in a context window of about ``context_min`` minutes (36 for 5-minute data)."""
    return max(MIN_CONTEXT_STEPS, context_min // step_min)


@dataclass
class SequenceBatch:
    """Model inputs for ``n`` (series, origin) pairs, in float32 as the networks take them."""

    context: np.ndarray  # [n, C, len(CHANNELS)]
    future: np.ndarray  # [n, n_horizons]: HA at each target, / level
    series_row: np.ndarray  # [n]: row of the pair's series in the panel
    ha: np.ndarray  # [n, n_horizons]: HA at each target, original scale (NaN where the profile has none)
    level: np.ndarray  # [n]

    def __len__(self) -> int:
        return len(self.series_row)

    def feeds(self, series_index: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The network's named inputs; ``series`` only for a network with a series embedding, whose index of
        each panel row is ``series_index``."""
        feeds = {"context": self.context, "future": self.future}
        if series_index is not None:
            feeds["series"] = np.asarray(series_index, dtype=np.int64)[self.series_row]
        return feeds


class SequenceBuilder:
    """Windows of one panel over the grid range that a set of origins needs, computed once and then sliced."""

    def __init__(self, panel: Panel, profiles: Profiles, origins: np.ndarray, horizon_steps: list[int],
                 context: int) -> None:
        origins = np.asarray(origins, dtype=np.int64)
        self.horizon_steps = np.asarray(horizon_steps, dtype=np.int64)
        self.context = context
        self.first = int(origins.min()) - context + 1
        last = int(origins.max()) + int(self.horizon_steps.max())
        steps = np.arange(self.first, last + 1)
        # A series unknown to the profiles gets its level from values up to the first origin: no forecast
        # reads past its origin.
        known_until = int(origins.min()) + 1
        ha = profiles.expected(panel, steps, context_end=known_until)
        self.level = profiles.scales(panel, known_until)
        values = np.full((panel.n_series, len(steps)), np.nan)
        inside = (steps >= 0) & (steps < panel.n_times)
        values[:, inside] = panel.values[:, steps[inside]]
        self.values, self.ha = values, ha
        self.channels = self._channels(panel, steps)

    def _channels(self, panel: Panel, steps: np.ndarray) -> np.ndarray:
        """``[n_series, n_steps, len(CHANNELS)]`` float32."""
        scale = self.level[:, None]
        missing = np.isnan(self.values)
        residual = np.where(missing, 0.0, np.clip((self.values - self.ha) / scale, -CLIP, CLIP))
        value = np.where(missing, 0.0, np.clip(self.values / scale, -CLIP, CLIP))
        local = pd.DatetimeIndex(panel.start + pd.to_timedelta(steps * panel.step_min, unit="min"))
        local = local.tz_convert(panel.timezone)
        angle = 2 * np.pi * np.asarray(local.hour * 60 + local.minute) / 1440
        weekend = np.asarray(local.day_of_week >= 5, dtype=np.float64)
        per_step = np.broadcast_to(np.stack([np.sin(angle), np.cos(angle), weekend], axis=-1),
                                   (panel.n_series, len(steps), 3))
        stacked = np.concatenate([np.stack([residual, missing, value], axis=-1), per_step], axis=-1)
        return np.nan_to_num(stacked).astype(np.float32)

    def batch(self, rows: np.ndarray, origins: np.ndarray) -> SequenceBatch:
        """The inputs of the pairs ``(rows[i], origins[i])``."""
        rows, at = np.asarray(rows, dtype=np.int64), np.asarray(origins, dtype=np.int64) - self.first
        windows = sliding_window_view(self.channels, self.context, axis=1)  # [series, start, channel, C]
        context = windows[rows, at - self.context + 1].transpose(0, 2, 1)
        targets = at[:, None] + self.horizon_steps[None, :]
        ha = self.ha[rows[:, None], targets]
        level = self.level[rows]
        future = np.nan_to_num(np.clip(ha / level[:, None], -CLIP, CLIP)).astype(np.float32)
        return SequenceBatch(np.ascontiguousarray(context), future, rows, ha, level)

    def grid(self, n_series: int, origins: np.ndarray) -> SequenceBatch:
        """Every series at every origin, series-major (pair ``i`` is series ``i // len(origins)``)."""
        origins = np.asarray(origins, dtype=np.int64)
        rows = np.repeat(np.arange(n_series), len(origins))
        return self.batch(rows, np.tile(origins, n_series))

    def targets(self, rows: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """``[n, n_horizons]`` float32: the residual at each horizon, ``(y - HA) / level``; NaN where missing."""
        at = np.asarray(origins, dtype=np.int64) - self.first
        targets = at[:, None] + self.horizon_steps[None, :]
        rows = np.asarray(rows, dtype=np.int64)[:, None]
        residual = (self.values[rows, targets] - self.ha[rows, targets]) / self.level[rows]
        return np.clip(residual, -CLIP, CLIP).astype(np.float32)


def to_original_scale(residuals: np.ndarray, batch: SequenceBatch) -> np.ndarray:
    """Model output ``[n, n_horizons, 3]`` (normalised residual quantiles) as values: ``HA + residual * level``,
    sorted P10 <= P50 <= P90; NaN where the historical average is unknown."""
    values = batch.ha[:, :, None] + residuals.astype(np.float64) * batch.level[:, None, None]
    return np.sort(values, axis=-1)


@dataclass
class TrainingWindows:
    """Chronologically split training pairs: the validation pairs' origins all come after the training ones'
    targets."""

    train: SequenceBatch
    train_targets: np.ndarray
    validation: SequenceBatch
    validation_targets: np.ndarray


def training_windows(panel: Panel, profiles: Profiles, train_end: int, horizon_steps: list[int], context: int,
                     max_windows: int, validation_fraction: float, rng: np.random.Generator) -> TrainingWindows:
    """A random sample of at most ``max_windows`` (series, origin) pairs whose targets all lie before
    ``train_end`` and whose first horizon is observed; the last ``validation_fraction`` of the origins (in time)
    is held out for early stopping."""
    longest = int(max(horizon_steps))
    first_origin, last_origin = context - 1, train_end - 1 - longest
    if last_origin - first_origin < 4:
        raise ValueError(f"too little training data for a {context}-step context and a {longest}-step horizon")
    split = last_origin - max(1, int((last_origin - first_origin) * validation_fraction))
    builder = SequenceBuilder(panel, profiles, np.array([first_origin, last_origin]), horizon_steps, context)

    def sample(lo: int, hi: int, limit: int) -> tuple[SequenceBatch, np.ndarray]:
        origins = np.arange(lo, hi + 1)
        first_target = builder.values[:, origins - builder.first + horizon_steps[0]]
        rows, cols = np.nonzero(np.isfinite(first_target))
        if len(rows) > limit:
            keep = np.sort(rng.choice(len(rows), limit, replace=False))
            rows, cols = rows[keep], cols[keep]
        return builder.batch(rows, origins[cols]), builder.targets(rows, origins[cols])

    n_validation = max(1, int(max_windows * validation_fraction))
    # Training targets end before the first validation origin: no validation value is learnt from.
    train, train_targets = sample(first_origin, split - longest, max_windows - n_validation)
    validation, validation_targets = sample(split + 1, last_origin, n_validation)
    return TrainingWindows(train, train_targets, validation, validation_targets)
