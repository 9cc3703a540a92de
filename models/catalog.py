"""Every model by name, imported only when asked for: naming ``xgboost`` must not import torch.

``BASELINES`` are the two models every report shows beside the others.
"""

from __future__ import annotations

import importlib

from models.base import Forecaster
from models.panel import BadSeriesInput

MODELS = {
    "historical-average": "models.baselines:HistoricalAverage",
    "persistence": "models.baselines:Persistence",
    "xgboost": "models.xgboost_model:XGBoostForecaster",
    "lstm": "models.lstm:LSTMForecaster",
    "transformer": "models.transformer:TransformerForecaster",
}
BASELINES = ("historical-average", "persistence")
LEARNED = ("xgboost", "lstm", "transformer")


def model_class(name: str) -> type[Forecaster]:
    """The forecaster class called ``name``; BadSeriesInput (field ``model``) lists the known names."""
    return class_named(MODELS, name, "model")


def class_named(classes: dict[str, str], name: str, kind: str) -> type:
    """The class ``classes[name]`` names (``module:attribute``), imported only now (torch stays unloaded until a
    torch model is asked for); BadSeriesInput (field ``model``) names the unknown ``kind`` and lists the known."""
    try:
        module, attribute = classes[name].split(":")
    except KeyError:
        raise BadSeriesInput("model", f"unknown {kind} {name!r}; known: {', '.join(classes)}") from None
    return getattr(importlib.import_module(module), attribute)


def model_names(choice: str) -> list[str]:
    """``all``, one name or a comma-separated list, as model names (checked)."""
    names = list(MODELS) if choice == "all" else [name.strip() for name in choice.split(",") if name.strip()]
    for name in names:
        if name not in MODELS:
            raise BadSeriesInput("model", f"unknown model {name!r}; known: {', '.join(MODELS)}, all")
    return names
