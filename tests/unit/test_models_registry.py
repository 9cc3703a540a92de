"""The model registry: save, load in a fresh process with the same predictions, immutable checked artifacts,
sortable versions, promotion history and rollback, and the one small read that serving polls."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from models.baselines import HistoricalAverage, Persistence
from models.fallback import WithFallback
from models.registry import Registry, RegistryError
from models.targets import load_panel
from smartcity.backends.database import open_database
from smartcity.backends.objects import open_objects
from tests.models_storage import stored_history

ROOT = Path(__file__).resolve().parents[2]
TARGET = "segment-flow"
NOW = datetime(2024, 2, 1, 12, tzinfo=timezone.utc)


@pytest.fixture
def fitted(tmp_path):
    """Settings of stored history, its panel as loaded, the holdout origins and models fitted before them."""
    settings, _ = stored_history(tmp_path)
    db = open_database(settings.database_url)
    panel = load_panel(db, TARGET, datetime(2024, 1, 4, tzinfo=timezone.utc), datetime(2024, 1, 10, tzinfo=timezone.utc))
    db.close()
    train_end = panel.n_times - panel.steps_per_day
    models = [HistoricalAverage(seed=1).fit(panel, train_end), Persistence(seed=1).fit(panel, train_end)]
    return settings, panel, np.arange(train_end - 1, panel.n_times - 1, 7), models


def test_round_trip_in_a_fresh_process_gives_the_same_forecasts(fitted, tmp_path):
    settings, panel, origins, models = fitted
    train_end = origins[0] + 1
    try:
        from models.xgboost_model import XGBoostForecaster
    except ImportError:  # the models extra is not installed: the baselines still go round
        pass
    else:  # bare, as artifacts were saved before training wrapped them, and as training saves them now
        models += [XGBoostForecaster(seed=1, rounds=20, max_rows=5000, early_stopping=5).fit(panel, train_end),
                   WithFallback(XGBoostForecaster(seed=1, rounds=20, max_rows=5000, early_stopping=5))]
    models.append(WithFallback(Persistence(seed=1)))
    for model in models:
        if isinstance(model, WithFallback):
            model.fit(panel, train_end)
            assert model.info["fallback"]["checked"], model.info["fallback"]
    labels = [f"{model.name}-{'wrapped' if isinstance(model, WithFallback) else 'bare'}" for model in models]
    registry = Registry(open_objects(settings.objects_url))
    versions = {label: registry.save(TARGET, model, {"note": "test"}) for label, model in zip(labels, models)}
    script = textwrap.dedent(f"""
        import sys
        from datetime import datetime, timezone
        import numpy as np
        from models.registry import Registry
        from models.targets import load_panel
        from smartcity.backends.database import open_database
        from smartcity.backends.objects import open_objects
        registry = Registry(open_objects({settings.objects_url!r}))
        panel = load_panel(open_database({settings.database_url!r}), {TARGET!r},
                           datetime(2024, 1, 4, tzinfo=timezone.utc), datetime(2024, 1, 10, tzinfo=timezone.utc))
        origins = np.array({origins.tolist()!r})
        loaded = {{label: registry.load({TARGET!r}, version) for label, version in {versions!r}.items()}}
        np.savez({str(tmp_path / 'loaded.npz')!r}, **{{label: model.predict(panel, origins)
                                                     for label, model in loaded.items()}})
        print("torch" in sys.modules, *(f"{{label}}={{type(model).__name__}}:{{model.name}}:{{model.context_steps()}}"
                                        for label, model in loaded.items()))
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    torch_loaded, *kinds = done.stdout.split()
    assert torch_loaded == "False"  # loading any model needs no torch
    assert kinds == [f"{label}={type(model).__name__}:{model.name}:{model.context_steps()}"
                     for label, model in zip(labels, models)]  # a wrapped artifact comes back wrapped, by its name
    loaded = np.load(tmp_path / "loaded.npz")
    for label, model in zip(labels, models):
        expected = model.predict(panel, origins)
        assert np.isfinite(expected).any()
        np.testing.assert_allclose(loaded[label], expected, rtol=1e-6, err_msg=label)
    wrapped = registry.card(TARGET, versions["persistence-wrapped"])
    assert wrapped["model"] == "persistence" and wrapped["params"]["model"] == "persistence"


def test_versions_sort_by_time_and_artifacts_are_immutable_and_checked(fitted):
    settings, _, _, models = fitted
    objects = open_objects(settings.objects_url)
    registry = Registry(objects)
    late = registry.save(TARGET, models[1], {}, now=NOW + timedelta(hours=1))
    early = registry.save(TARGET, models[0], {}, now=NOW)
    assert registry.versions(TARGET) == [early, late] and early.startswith("20240201T120000000Z-")
    with pytest.raises(RegistryError, match="never replaced"):
        registry.save(TARGET, models[0], {}, now=NOW)
    card = registry.card(TARGET, late)
    assert card["model"] == "persistence" and card["version"] == late and card["target"] == TARGET
    assert card["params"]["seed"] == 1 and set(card["files"]) == set(models[1].to_files())

    objects.put(f"models/{TARGET}/persistence/{late}/persistence.json", b"{}")
    with pytest.raises(RegistryError, match="does not match the hash"):
        registry.load(TARGET, late)
    objects.put(f"models/{TARGET}/xgboost/20240301T000000000Z-00000000/booster.ubj", b"unfinished: no card")
    assert registry.versions(TARGET) == [early, late]
    with pytest.raises(RegistryError, match="no version '20240301T000000000Z-00000000'"):
        registry.card(TARGET, "20240301T000000000Z-00000000")


def test_promote_keeps_the_history_and_rollback_restores_the_previous(fitted):
    settings, _, _, models = fitted
    registry = Registry(open_objects(settings.objects_url))
    first, second, third = (registry.save(TARGET, models[i % 2], {}, now=NOW + timedelta(minutes=i)) for i in range(3))
    assert registry.promoted(TARGET) is None
    with pytest.raises(RegistryError, match="nothing is promoted"):
        registry.rollback(TARGET)
    for version in (first, second, third):
        registry.promote(TARGET, version)
    assert registry.promoted(TARGET)[0] == third and registry.promoted(TARGET)[1]["model"] == "historical-average"

    assert registry.rollback(TARGET) == second
    assert registry.rollback(TARGET) == first
    assert registry.promoted_version(TARGET) == first
    with pytest.raises(RegistryError, match=f"only {first} was ever promoted"):
        registry.rollback(TARGET)
    history = registry.promotions(TARGET)
    assert [(event["action"], event["version"]) for event in history] == [
        ("promote", first), ("promote", second), ("promote", third), ("rollback", second), ("rollback", first)]
    with pytest.raises(RegistryError, match="no version 'nope'"):
        registry.promote(TARGET, "nope")
    assert registry.targets() == [TARGET]


class CountingStore:
    """An object store that counts the calls made to it."""

    def __init__(self, objects) -> None:
        self.objects, self.calls = objects, []

    def __getattr__(self, name):
        self.calls.append(name)
        return getattr(self.objects, name)


def test_serving_notices_a_promotion_with_one_small_read(fitted):
    settings, _, _, models = fitted
    registry = Registry(open_objects(settings.objects_url))
    version = registry.save(TARGET, models[0], {})
    registry.promote(TARGET, version)
    counting = CountingStore(open_objects(settings.objects_url))
    assert Registry(counting).promoted_version(TARGET) == version
    assert counting.calls == ["get"]
    pointer = json.loads(counting.objects.get(f"models/{TARGET}/promoted.json"))
    assert pointer["version"] == version and pointer["model"] == "historical-average"
