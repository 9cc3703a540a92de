"""Anomaly detectors: scores of 5-minute traffic windows, calibrated to [0, 1], beside the robust z-score.

Every detector implements :class:`models.anomaly.base.Detector`: ``fit(frame)`` on a long table of windows of
many series (segments or sensors: ``series_id, window_start, flow_per_hour, mean_speed_kmh, mean_occupancy``,
optionally ``road_class``) and ``score(frame)``, one row per window with ``anomaly_score`` (0..1: the share of
normal training windows that scored lower), the ``model``, the ``basis`` (a per-series model, the cold-start
model of the series' road class, or the global one) and the ``contributions`` of the features that weighed most.
A window is an alert from :data:`models.anomaly.base.ALERT_THRESHOLD` on.

- :mod:`models.anomaly.features`: the window features, in one place (values, residuals from the time-of-day
  profile, short changes), causal;
- :mod:`models.anomaly.zscore`: the baseline, the streaming job's robust z-score;
- :mod:`models.anomaly.isolation_forest`: scikit-learn's Isolation Forest per road class (saved with skops);
- :mod:`models.anomaly.autoencoder`: an MLP autoencoder trained with torch, served through ONNX;
- :mod:`models.anomaly.online`: the self-learning detector of ``smartcity models anomaly-scores`` (any CSV
  series, scored strictly causally, from nothing).

Like the forecasters, detectors save as named byte files (JSON, ONNX, skops: no pickle) into the registry under
their own targets (``anomaly-segment`` ...), and load without torch.
"""
