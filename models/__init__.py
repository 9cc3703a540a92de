"""Forecasting and anomaly models: training, registry and serving (the ``models`` extra)."""

from smartcity.extras import require

require("models", "numpy", "pandas", "sklearn", "xgboost", "onnxruntime")
