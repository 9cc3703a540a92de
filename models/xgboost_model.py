"""XGBoost for the short term: one global model per horizon over every series, P10/P50/P90 from a few boosters.

Each horizon's boosters learn the normalised residual from the historical average (:mod:`models.features`; its
profiles smoothed over neighbouring slots where that pays, :meth:`~models.baselines.Profiles.anchor`) with
XGBoost's quantile loss at 0.1, 0.5 and 0.9 (three outputs, one booster). Training origins are a seeded random
sample when there are more (series x origin) rows than ``max_rows``; the last ``validation_fraction`` of the
training part, in time, stops the boosting early, and its origins come after every training target.

Each horizon has ``bags`` boosters, each with its own seed (its rows and columns subsampled differently, its own
sample of origins), and a forecast is the mean of their quantiles: one booster's error moves by a few per cent
from one seed to the next on a small city's data, and the mean of three is better than each on average (real
hourly counts at 1-3 h, seeds 0-2: MAE 2.4-3.5 % lower than the single boosters' mean on four junctions, 0.3-1.7 %
on a motorway station; docs/forecasting.md).

The files are XGBoost's own UBJSON boosters beside the profiles and the feature spec: serving needs xgboost and
numpy, nothing else. A series the model has never seen is forecast from the mean profile shape at the level of
its own recent values (:class:`~models.baselines.Profiles`).
"""

from __future__ import annotations

import os
import time

# XGBoost's OpenMP threads spin while they wait; on a 2-core machine shared with anything else that turns a
# 2-second fit into 25 seconds. Sleeping instead costs little when the cores are free. Read when OpenMP loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import xgboost as xgb  # noqa: E402

from models.base import DEFAULT_HORIZONS_MIN, QUANTILES, Forecaster, json_file, read_json_file, sort_quantiles
from models.baselines import Profiles
from models.features import FeatureSpec, PanelFeatures
from models.panel import Panel

TOP_FEATURES = 10
PREDICT_CHUNK_ROWS = 200_000
MAX_BIN = 128
BAGS = 3


class XGBoostForecaster(Forecaster):
    """Gradient-boosted quantile trees on lags, rolling statistics, profiles, neighbours and covariates."""

    name = "xgboost"

    def __init__(self, horizons_min: tuple[int, ...] = DEFAULT_HORIZONS_MIN, seed: int = 0, max_rows: int = 60_000,
                 rounds: int = 300, learning_rate: float = 0.1, max_depth: int = 6, early_stopping: int = 20,
                 validation_fraction: float = 0.15, nthread: int = 2, bags: int = BAGS) -> None:
        super().__init__(horizons_min, seed)
        if bags < 1:
            raise ValueError(f"bags: at least 1, not {bags}")
        self.max_rows, self.rounds, self.learning_rate = max_rows, rounds, learning_rate
        self.max_depth, self.early_stopping = max_depth, early_stopping
        self.validation_fraction, self.nthread, self.bags = validation_fraction, nthread, bags
        self.boosters: tuple[tuple[xgb.Booster, ...], ...] = ()  # per horizon, one per bag

    def params(self) -> dict:
        return {**super().params(), "max_rows": self.max_rows, "rounds": self.rounds,
                "learning_rate": self.learning_rate, "max_depth": self.max_depth,
                "early_stopping": self.early_stopping, "validation_fraction": self.validation_fraction,
                "nthread": self.nthread, "bags": self.bags}

    def fit(self, panel: Panel, train_end: int) -> XGBoostForecaster:
        started = time.perf_counter()
        known = panel.until(train_end)
        self.step_min = panel.step_min
        self.profiles = Profiles.fit_smoothed(known, train_end)
        self.spec = FeatureSpec.for_panel(known)
        steps = known.horizon_steps(self.horizons_min)
        features = PanelFeatures(known, self.profiles.anchor(), self.spec, train_end, max(steps))
        rng = np.random.default_rng(self.seed)
        fits = [[self._fit_horizon(features, train_end, step, self.seed + bag, rng) for bag in range(self.bags)]
                for step in steps]
        self.boosters = tuple(tuple(booster for booster, _ in bags) for bags in fits)
        by_horizon = lambda values: dict(zip(map(str, self.horizons_min), values))
        self.info = {"features": self.spec.names(), "train_rows": by_horizon(bags[0][1] for bags in fits),
                     "profile_smoothing_min": self.profiles.smoothing_slots * self.step_min,
                     "trees": by_horizon([b.num_boosted_rounds() for b in bags] for bags in self.boosters),
                     "feature_importance_gain": by_horizon(map(_top_features, self.boosters)),
                     "training_s": round(time.perf_counter() - started, 2)}
        return self

    def _fit_horizon(self, features: PanelFeatures, train_end: int, step: int, seed: int,
                     rng: np.random.Generator) -> tuple[xgb.Booster, int]:
        last = train_end - 1 - step  # the last origin whose target lies in the training part
        if last < 20:
            raise ValueError(f"too little training data for a {step}-step horizon: {train_end} steps")
        split = last - max(1, int((last + 1) * self.validation_fraction))
        per_series = max(1, self.max_rows // features.panel.n_series)
        n_validation = max(1, int(per_series * self.validation_fraction))
        # training targets end at ``split``, before the first validation origin: nothing validated is learnt
        train = self._matrix(features, _sample(np.arange(0, split - step + 1), per_series - n_validation, rng), step)
        validation = self._matrix(features, _sample(np.arange(split + 1, last + 1), n_validation, rng), step,
                                  reference=train)
        evals = [(validation, "validation")] if validation.num_row() else []
        params = {"objective": "reg:quantileerror", "quantile_alpha": np.array(QUANTILES), "tree_method": "hist",
                  "nthread": self.nthread, "seed": seed, "eta": self.learning_rate,
                  "max_depth": self.max_depth, "subsample": 0.8, "colsample_bynode": 0.8, "min_child_weight": 5,
                  "max_bin": MAX_BIN}
        booster = xgb.train(params, train, self.rounds, evals=evals, verbose_eval=False,
                            early_stopping_rounds=self.early_stopping if evals else None)
        return (booster[: booster.best_iteration + 1] if evals else booster), train.num_row()

    def _matrix(self, features: PanelFeatures, origins: np.ndarray, step: int,
                reference: xgb.QuantileDMatrix | None = None) -> xgb.QuantileDMatrix:
        x, y = features.at(origins, step), features.target(origins, step)
        keep = np.isfinite(y)
        return xgb.QuantileDMatrix(x[keep], y[keep], feature_names=self.spec.names(), nthread=self.nthread,
                                   max_bin=MAX_BIN, ref=reference)

    def predict(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        origins = np.asarray(origins, dtype=np.int64)
        if panel.step_min != self.step_min:
            raise ValueError(f"the model was fitted on {self.step_min}-minute data, not {panel.step_min}-minute")
        known = panel.until(int(origins.max()) + 1)
        steps = known.horizon_steps(self.horizons_min)
        features = PanelFeatures(known, self.profiles.anchor(), self.spec, int(origins.min()) + 1, max(steps))
        out = np.empty((panel.n_series, len(origins), len(steps), len(QUANTILES)))
        n_chunks = max(1, -(-panel.n_series * len(origins) // PREDICT_CHUNK_ROWS))
        for chunk in np.array_split(np.arange(len(origins)), n_chunks):
            for k, (step, boosters) in enumerate(zip(steps, self.boosters)):
                x = features.at(origins[chunk], step)
                # each bag's quantiles put in order before their mean, as one booster's forecast would be
                residuals = np.mean([np.sort(booster.inplace_predict(x), axis=-1) for booster in boosters], axis=0)
                out[:, chunk, k] = features.to_values(residuals, origins[chunk], step)
        return sort_quantiles(out)

    def to_files(self) -> dict[str, bytes]:
        files = {_booster_file(minutes, bag): bytes(booster.save_raw("ubj"))
                 for minutes, boosters in zip(self.horizons_min, self.boosters) for bag, booster in enumerate(boosters)}
        files["profiles.json"] = json_file(self.profiles.to_json())
        files["params.json"] = json_file({**self.params(), "features": self.spec.to_json()})
        files["info.json"] = json_file(self.info)
        return files

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> XGBoostForecaster:
        params = read_json_file(files, "params.json")
        spec, step_min = FeatureSpec.from_json(params.pop("features")), params.pop("step_min")
        # a model saved before bagging has one booster per horizon and no "bags"
        model = cls(**{**params, "horizons_min": tuple(params["horizons_min"]), "bags": params.get("bags", 1)})
        model.step_min, model.spec = step_min, spec
        model.profiles = Profiles.from_json(read_json_file(files, "profiles.json"))
        model.info = read_json_file(files, "info.json")
        model.boosters = tuple(tuple(_booster(files[_booster_file(minutes, bag)], model.nthread)
                                     for bag in range(model.bags)) for minutes in model.horizons_min)
        return model


def _booster_file(minutes: int, bag: int) -> str:
    """The file of a horizon's booster: the first bag's keeps the name of the one booster of a model before bagging."""
    return f"xgboost-{minutes}min.ubj" if bag == 0 else f"xgboost-{minutes}min-{bag}.ubj"


def _booster(data: bytes, nthread: int) -> xgb.Booster:
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    booster.set_param({"nthread": nthread})
    return booster


def _top_features(boosters: tuple[xgb.Booster, ...]) -> list[list]:
    """The ``TOP_FEATURES`` features with the largest mean gain per split (over the boosters that split on
    them), with that gain."""
    scores = [booster.get_score(importance_type="gain") for booster in boosters]
    gains = {name: float(np.mean([score[name] for score in scores if name in score]))
             for name in {name for score in scores for name in score}}
    ranked = sorted(gains.items(), key=lambda item: (-item[1], item[0]))[:TOP_FEATURES]
    return [[name, round(float(gain), 6)] for name, gain in ranked]


def _sample(origins: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    """At most ``limit`` of ``origins``, drawn at random, in time order."""
    if len(origins) <= limit:
        return origins
    return np.sort(rng.choice(origins, max(limit, 1), replace=False))
