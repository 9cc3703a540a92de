"""Bench: anomaly detection on simulated sensor history with injected, labelled anomalies, every detector beside
the robust z-score, in one run.

    .venv/bin/python bench/bench_anomaly.py [--days 21] [--train-days 14] [--seed 1] [--incidents-per-day 6]
                                            [--faults 15] [--threshold 0.999]

1. :func:`smartcity.simulator.history.simulate_history` gives ``--days`` of 5-minute windows of every loop sensor;
   the first ``--train-days`` have no incident and no fault, the rest has ``--incidents-per-day`` random
   incidents (accidents and lane closures, the simulator's own congestion) and ``--faults`` injected sensor
   faults of each kind: a stuck sensor (every metric repeats the last window, 1-3 h), a silent one (flow 0, no
   speed, occupancy 0, 30-120 min), a spike (one window, one metric x4 or speed /4), a slow drift (flow or
   occupancy creeping up to +60 %, or speed down to -40 %, over 4 h). Faults fall in the day (6:00-22:00, city
   time), where a sensor's fault can be told from quiet traffic.
2. Each detector is fitted on the training days (profiles and models; the last fifth calibrates) and scores the
   rest in one causal pass (a window's score reads only its series' windows up to it, as the ``detect-anomalies``
   function would: ``tests/unit/test_anomaly_detectors.py`` checks that a window scored with its context alone
   scores the same).
3. Event-level figures at ``--threshold``: an event is detected when any window inside it (its sensors, from its
   start to 30 minutes after its end) scores at or above the threshold; an incident's sensors are those of its
   segment and the segments upstream (the queue spills back). A flagged window outside every event is a false
   positive; contiguous ones of a sensor count as one false event. Precision, recall, F1; the median delay from
   an event's start to the end of its first flagged window; recall per kind.
4. Hotspots (:mod:`models.anomaly.hotspots`, DBSCAN in space and time) over each detector's flagged windows:
   precision (hotspots within 500 m and the time of an incident) and recall (incidents with such a hotspot).

The targets of the anomaly issue are printed beside the figures: the best model's event F1 at least 0.2 above the
z-score's, a median delay of at most 10 minutes. Run it with nothing else on the machine; the load average is
printed with the figures.

Over 300 lines because a bench is read top to bottom as one protocol (inject, fit, score, count events, cluster):
split, the counting rules would sit away from the figures they produce.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import load_average  # noqa: E402
from models.anomaly.autoencoder import AutoencoderDetector  # noqa: E402
from models.anomaly.base import ALERT_THRESHOLD, segment_road_classes  # noqa: E402
from models.anomaly.isolation_forest import IsolationForestDetector  # noqa: E402
from models.anomaly.zscore import ZScoreDetector, streaming_flags  # noqa: E402
from smartcity.simulator.city import load_city  # noqa: E402
from smartcity.simulator.history import random_incidents, simulate_history  # noqa: E402
from smartcity.simulator.macroscopic import city_roads  # noqa: E402
from smartcity.simulator.network import neighbours, segment_ngsi_id  # noqa: E402

END = datetime(2024, 10, 28, tzinfo=timezone.utc)  # a Monday: the test days end on a Sunday
GRACE = timedelta(minutes=30)
STEP = timedelta(minutes=5)
HOTSPOT_MATCH_M = 500.0
METRICS = ("flow_per_hour", "mean_speed_kmh", "mean_occupancy")
THRESHOLDS = (0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99995)


@dataclass
class Event:
    kind: str
    series: frozenset[str]
    start: pd.Timestamp
    end: pd.Timestamp  # the event's end, without the grace
    lon: float = float("nan")
    lat: float = float("nan")
    #: (series_id, window_start) of further windows inside the event: where an incident's queue spilled
    windows: pd.MultiIndex | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=21)
    parser.add_argument("--train-days", type=int, default=14)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--incidents-per-day", type=float, default=6.0)
    parser.add_argument("--faults", type=int, default=15, help="injected faults of each kind")
    parser.add_argument("--threshold", type=float, default=ALERT_THRESHOLD)
    args = parser.parse_args()
    print(f"load average before: {load_average()}", flush=True)
    started = time.perf_counter()
    frame, events, train_end = simulated_sensors(args)
    print(f"history: {args.days} days, {frame['series_id'].nunique()} sensors, {len(frame):,} windows, "
          f"{sum(e.kind == 'incident' for e in events)} incidents and {args.faults} faults of each kind in the last "
          f"{args.days - args.train_days} days ({time.perf_counter() - started:.0f} s)", flush=True)
    train = frame[frame["window_start"] < train_end]
    test = frame[frame["window_start"] >= train_end - 12 * STEP]  # with an hour of context
    scored = test["window_start"] >= train_end
    results, flags, stricter = [], {}, {}
    detectors = {"zscore": ZScoreDetector(seed=args.seed), "isolation-forest": IsolationForestDetector(seed=args.seed),
                 "autoencoder": AutoencoderDetector(seed=args.seed)}
    for name, detector in detectors.items():
        began = time.perf_counter()
        detector.fit(train)
        fitted = time.perf_counter()
        scores = detector.score(test)["anomaly_score"].to_numpy()[scored.to_numpy()]
        done = time.perf_counter()
        flags[name] = scores >= args.threshold
        results.append((name, evaluate(test[scored], flags[name], events), fitted - began, done - fitted))
        stricter[name] = best_threshold(test[scored], scores, events)
        print(f"  {name}: fitted in {fitted - began:.1f} s, scored in {done - fitted:.1f} s", flush=True)
        if name == "zscore":
            rule = streaming_flags(detector.robust_z(test))[scored.to_numpy()]
            flags["zscore |z|>3.5"] = rule
            results.append(("zscore |z|>3.5", evaluate(test[scored], rule, events), 0.0, 0.0))
    report(results, events, args)
    print("\nthe alert threshold that gives each model its best F1 (the setting SMARTCITY_ANOMALY_THRESHOLD):")
    report([(f"{name} @{threshold}", figures, 0.0, 0.0) for name, (threshold, figures) in stricter.items()],
           events, args)
    hotspots(test[scored], flags, events)
    at_default = {name: figures for name, figures, _, _ in results}
    at_best = {name: figures for name, (_, figures) in stricter.items()}
    for label, table in ((f"the threshold {args.threshold}", at_default), ("each model's best threshold", at_best)):
        learned = max((n for n in table if not n.startswith("zscore")), key=lambda n: table[n]["f1"])
        baseline = max((n for n in table if n.startswith("zscore")), key=lambda n: table[n]["f1"])
        gain = table[learned]["f1"] - table[baseline]["f1"]
        print(f"\ntarget at {label}: best model's event F1 >= z-score's + 0.2: {learned} {table[learned]['f1']:.2f} vs "
              f"{baseline} {table[baseline]['f1']:.2f} ({gain:+.2f}) -> {'met' if gain >= 0.2 else 'NOT met'}; "
              f"median detection delay <= 10 min: {table[learned]['delay']:.0f} min -> "
              f"{'met' if table[learned]['delay'] <= 10 else 'NOT met'}")
    print(f"load average after: {load_average()}; {time.perf_counter() - started:.0f} s in all")


# --- the data -------------------------------------------------------------------------------------------------


def simulated_sensors(args) -> tuple[pd.DataFrame, list[Event], pd.Timestamp]:
    """Every sensor's windows (``series_id`` = sensor, its road class and place), the labelled events, the start
    of the scored part."""
    rng = np.random.default_rng(args.seed)
    train_end = pd.Timestamp(END - timedelta(days=args.days - args.train_days))
    scored_windows = pd.date_range(train_end, END, freq=STEP, tz="UTC", inclusive="left")
    plans = random_incidents(city_roads(), scored_windows, args.incidents_per_day, rng)
    frame = sensor_frame(simulate_history(args.days, end=END, seed=args.seed, incidents=plans))
    twin = sensor_frame(simulate_history(args.days, end=END, seed=args.seed, incidents=[]))
    events = incident_events(frame, plans, incident_effects(frame, twin))
    frame, faults = inject_faults(frame, train_end, events, args.faults, rng)
    return frame, events + faults, train_end


def sensor_frame(history) -> pd.DataFrame:
    frame = history.sensors.rename(columns={"sensor_id": "series_id"})
    frame["road_class"] = frame["segment_id"].map(segment_road_classes())
    frame = frame[["series_id", "window_start", *METRICS, "road_class", "segment_id", "lon", "lat"]]
    return frame.sort_values(["window_start", "series_id"]).reset_index(drop=True)


def incident_effects(frame: pd.DataFrame, twin: pd.DataFrame) -> np.ndarray:
    """The windows the incidents changed: occupancy up by half (and 0.03) or speed down by a quarter against the
    same simulation without incidents (same demand; the loops' noise differs a little)."""
    occupancy = frame["mean_occupancy"] - twin["mean_occupancy"]
    speed = (frame["mean_speed_kmh"] - twin["mean_speed_kmh"]) / twin["mean_speed_kmh"]
    return (((occupancy / twin["mean_occupancy"].clip(lower=0.01) > 0.5) & (occupancy > 0.03))
            | (speed < -0.25)).to_numpy()


def incident_events(frame: pd.DataFrame, plans, effects: np.ndarray) -> list[Event]:
    """One event per incident that changed any window: the sensors of its segment and of the segments upstream
    for its duration, and every window it changed (the queue spills back further and outlasts the incident): a
    changed window belongs to the latest incident started before it, within three hours. An incident that
    changed nothing (no traffic to hold up) is left out."""
    sensors_of = frame.groupby("segment_id")["series_id"].unique()
    links = neighbours()
    detectors = {d["lane"]: d for d in _network_detectors()}
    starts = pd.Series([pd.Timestamp(plan.start) for plan in plans])
    changed = frame.loc[effects, ["series_id", "window_start"]]
    owner = np.searchsorted(starts.to_numpy(), (changed["window_start"] + STEP).to_numpy(), side="left") - 1
    late = (changed["window_start"].to_numpy() - starts.to_numpy()[np.clip(owner, 0, None)]) > np.timedelta64(3, "h")
    owner = np.where(late, -1, owner)
    events = []
    for number, plan in enumerate(plans):
        segment = segment_ngsi_id(plan.lane.rsplit("_", 1)[0])
        segments = [segment, *links.get(segment, {}).get("upstream", [])]
        series = frozenset(s for seg in segments if seg in sensors_of.index for s in sensors_of[seg])
        windows = changed[owner == number]
        if windows.empty:
            continue
        place = detectors.get(plan.lane, {})
        start = pd.Timestamp(plan.start)
        events.append(Event("incident", series, start, start + pd.Timedelta(minutes=plan.minutes),
                            place.get("lon", np.nan), place.get("lat", np.nan),
                            pd.MultiIndex.from_frame(windows)))
    print(f"incidents: {len(plans)}, {len(plans) - len(events)} of them changed no window (no traffic to hold up: "
          "left out)", flush=True)
    return events


def inject_faults(frame: pd.DataFrame, train_end: pd.Timestamp, events: list[Event], per_kind: int,
                  rng: np.random.Generator) -> tuple[pd.DataFrame, list[Event]]:
    """``frame`` with sensor faults injected after ``train_end``, away from the incidents and each other."""
    frame = frame.copy()
    sensors = sorted(frame["series_id"].unique())
    busy: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for event in events:
        for series in event.series:
            busy.setdefault(series, []).append((event.start - timedelta(hours=1), event.end + timedelta(hours=1)))
    last = frame["window_start"].max()
    tz = load_city().timezone
    by_series = {s: rows for s, rows in frame.groupby("series_id").indices.items()}
    times = frame["window_start"]
    faults = []
    minutes = {"stuck": (60, 180), "silent": (30, 120), "spike": (5, 5), "drift": (240, 240)}
    for kind, (low, high) in minutes.items():
        made = 0
        while made < per_kind:
            series = sensors[rng.integers(len(sensors))]
            length = pd.Timedelta(minutes=int(rng.integers(low // 5, high // 5 + 1)) * 5)
            start = train_end + pd.Timedelta(minutes=5 * int(rng.integers(12, int((last - train_end) / STEP) - 60)))
            local_hour = start.tz_convert(tz).hour
            if not 6 <= local_hour < 22 or (start + length).tz_convert(tz).hour >= 23:
                continue
            if any(a < start + length and start < b for a, b in busy.get(series, [])):
                continue
            busy.setdefault(series, []).append((start - timedelta(hours=2), start + length + timedelta(hours=2)))
            rows = by_series[series]
            inside = rows[((times.iloc[rows] >= start) & (times.iloc[rows] < start + length)).to_numpy()]
            before = rows[(times.iloc[rows] < start).to_numpy()][-1]
            _fault(frame, kind, inside, before, rng)
            faults.append(Event(kind, frozenset([series]), start, start + length))
            made += 1
    return frame, faults


def _fault(frame: pd.DataFrame, kind: str, rows: np.ndarray, before: int, rng: np.random.Generator) -> None:
    metrics = list(METRICS)
    if kind == "stuck":
        frame.loc[rows, metrics] = frame.loc[before, metrics].to_numpy()
    elif kind == "silent":
        frame.loc[rows, metrics] = [0.0, np.nan, 0.0]
    elif kind == "spike":
        metric = metrics[rng.integers(3)]
        frame.loc[rows, metric] = frame.loc[rows, metric] * (0.25 if metric == "mean_speed_kmh" else 4.0)
    else:  # drift: a sensor losing its calibration, slowly
        metric = metrics[rng.integers(3)]
        ramp = np.linspace(0, 1, len(rows))
        factor = 1 - 0.4 * ramp if metric == "mean_speed_kmh" else 1 + 0.6 * ramp
        frame.loc[rows, metric] = frame.loc[rows, metric].to_numpy() * factor


def _network_detectors() -> list[dict]:
    from smartcity.simulator.network import traffic_loops

    return [loop.model_dump() for loop in traffic_loops()]


# --- event-level figures --------------------------------------------------------------------------------------


def evaluate(frame: pd.DataFrame, flagged: np.ndarray, events: list[Event]) -> dict:
    """Precision, recall, F1, median delay (minutes) and recall per kind of ``flagged`` windows of ``frame``."""
    series, starts = frame["series_id"].to_numpy(), frame["window_start"]
    keys = pd.MultiIndex.from_arrays([frame["series_id"], frame["window_start"]])
    inside_any = np.zeros(len(frame), dtype=bool)
    detected, delays, per_kind = 0, [], {}
    for event in events:
        inside = np.isin(series, list(event.series)) & (starts + STEP > event.start).to_numpy() \
            & (starts < event.end + GRACE).to_numpy()
        if event.windows is not None:
            inside |= keys.isin(event.windows)
        inside_any |= inside
        hits = inside & flagged
        found = bool(hits.any())
        per_kind.setdefault(event.kind, []).append(found)
        if found:
            detected += 1
            first = starts[hits].min()
            delays.append(max((first + STEP - event.start).total_seconds() / 60, 0.0))
    false = flagged & ~inside_any
    false_events = _runs(series[false], starts[false])
    precision = detected / (detected + false_events) if detected + false_events else 0.0
    recall = detected / len(events) if events else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "false_events": false_events,
            "delay": statistics.median(delays) if delays else float("nan"),
            "kinds": {kind: sum(found) / len(found) for kind, found in per_kind.items()},
            "flagged_share": float(flagged.mean())}


def best_threshold(frame: pd.DataFrame, scores: np.ndarray, events: list[Event]) -> tuple[float, dict]:
    """The threshold of :data:`THRESHOLDS` with the best event F1, and its figures."""
    figures = {threshold: evaluate(frame, scores >= threshold, events) for threshold in THRESHOLDS}
    best = max(figures, key=lambda threshold: figures[threshold]["f1"])
    return best, figures[best]


def _runs(series: np.ndarray, starts: pd.Series) -> int:
    """How many runs of contiguous windows (per series) the flagged windows make."""
    if not len(series):
        return 0
    table = pd.DataFrame({"series": series, "start": starts.to_numpy()}).sort_values(["series", "start"])
    new = (table["series"] != table["series"].shift()) | (table["start"].diff() != pd.Timedelta(STEP))
    return int(new.sum())


def report(results: list, events: list[Event], args) -> None:
    kinds = sorted({event.kind for event in events})
    counts = {kind: sum(event.kind == kind for event in events) for kind in kinds}
    print(f"\nevents: {', '.join(f'{kind} {counts[kind]}' for kind in kinds)}; threshold {args.threshold}")
    header = f"{'model':<18}{'precision':>10}{'recall':>8}{'F1':>6}{'false ev':>9}{'delay min':>10}{'flagged':>9}"
    header += "".join(f"{'R ' + kind:>11}" for kind in kinds) + f"{'fit s':>8}{'score s':>8}"
    print(header)
    for name, figures, fit_s, score_s in results:
        line = (f"{name:<18}{figures['precision']:>10.2f}{figures['recall']:>8.2f}{figures['f1']:>6.2f}"
                f"{figures['false_events']:>9d}{figures['delay']:>10.0f}{figures['flagged_share']:>8.1%} ")
        line += "".join(f"{figures['kinds'].get(kind, 0):>11.2f}" for kind in kinds)
        print(line + f"{fit_s:>8.1f}{score_s:>8.1f}")


def hotspots(frame: pd.DataFrame, flags: dict[str, np.ndarray], events: list[Event]) -> None:
    try:
        from models.anomaly.hotspots import HotspotPoint, find_hotspots, haversine_m
    except ImportError:
        print("\nhotspots: models/anomaly/hotspots.py is not there; skipped")
        return
    incidents = [e for e in events if e.kind == "incident" and np.isfinite(e.lon)]
    print(f"\nhotspots (DBSCAN over flagged windows; an incident is found by a hotspot within {HOTSPOT_MATCH_M:.0f} m "
          f"and its time): {len(incidents)} incidents")
    print(f"{'model':<18}{'hotspots':>9}{'precision':>10}{'recall':>8}")
    for name, flagged in flags.items():
        rows = frame[flagged]
        points = [HotspotPoint(f"{s}|{t.isoformat()}", "anomaly", lon, lat, t.to_pydatetime())
                  for s, t, lon, lat in zip(rows["series_id"], rows["window_start"], rows["lon"], rows["lat"])]
        found = find_hotspots(points)
        matches = lambda h, e: (haversine_m(h.lon, h.lat, e.lon, e.lat) <= HOTSPOT_MATCH_M
                                and pd.Timestamp(h.since) < e.end + GRACE and pd.Timestamp(h.last_seen) >= e.start)
        true = sum(any(matches(h, e) for e in incidents) for h in found)
        recalled = sum(any(matches(h, e) for h in found) for e in incidents)
        print(f"{name:<18}{len(found):>9d}{true / len(found) if found else 0:>10.2f}"
              f"{recalled / len(incidents) if incidents else 0:>8.2f}")


if __name__ == "__main__":
    main()
