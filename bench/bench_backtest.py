"""Bench: ``smartcity models backtest`` on the size of data the forecasting issue names, 20 series x 100 days of
15-minute values, timed beside the baselines alone in the same run.

    .venv/bin/python bench/bench_backtest.py [--series 20] [--days 100] [--interval-min 15] [--seed 1]
                                             [--gaps 0.01] [--models all]

The data: the simulated city's loop counts (:func:`simulate_history`), ``--series`` sensors spread over the network,
each one's vehicles per ``--interval-min`` (the sum of its 5-minute windows), a ``--gaps`` share of the rows left
out at random (a detector that missed intervals). It is written as the CSV a city would bring
(``series_id,timestamp,value``, times in UTC) and backtested, with ``--timezone`` the city's (the 100 days end
after its clocks went back on 25 October: without the zone, the daily profiles would follow UTC and the city's
rhythm would run an hour off them from then on), twice through the command itself, in a subprocess: the two
baselines alone (the reference time), then ``--models``. Printed: wall time and peak memory of each run, the
forecasts written, the command's own report (MAE per model and horizon beside the baselines), then every model's
MAE beside a tuned gradient-boosting reference fitted on the same data and split (:mod:`gbm_reference`, the kind
of reference the backtest is scored against outside the project), and the load average.
The issue's target: the whole backtest in minutes on 2 cores. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(PROJECT / "bench"))

from machine import load_average  # noqa: E402

END = datetime(2026, 11, 2, tzinfo=timezone.utc)  # a Monday, fixed: the same data in every run of one seed
BASELINES = "historical-average,persistence"
HORIZONS = [15, 30, 60]


def write_detector_counts(csv: Path, series: int, days: float, interval_min: int, seed: int,
                          gaps: float) -> tuple[int, int, float, str]:
    """Write ``series_id,timestamp,value``, vehicles per interval of ``series`` loops evenly spread over the sorted
    ids; (rows, series, mean value, the city's time zone). Run in a process of its own: 100 simulated days take a
    few GB, which a process forked from this one would count as its own peak memory."""
    import numpy as np

    from smartcity.simulator.city import load_city
    from smartcity.simulator.history import simulate_history

    sensors = simulate_history(days, END, seed).sensors[["sensor_id", "window_start", "flow"]]
    ids = np.sort(sensors.sensor_id.unique())
    chosen = ids[np.linspace(0, len(ids) - 1, series).round().astype(int)]
    picked = sensors[sensors.sensor_id.isin(chosen)]
    counts = (picked.assign(timestamp=picked.window_start.dt.floor(f"{interval_min}min"))
              .groupby(["sensor_id", "timestamp"], as_index=False).flow.sum()
              .rename(columns={"sensor_id": "series_id", "flow": "value"}))
    counts = counts[np.random.default_rng(seed).random(len(counts)) >= gaps]
    counts.to_csv(csv, index=False)
    return len(counts), counts.series_id.nunique(), float(counts.value.mean()), str(load_city().timezone)


def run_backtest(csv: Path, models: str, out: Path, zone: str) -> tuple[float, float, str]:
    """(wall seconds, peak memory MiB, report) of one ``smartcity models backtest`` process."""
    command = [str(Path(sys.executable).with_name("smartcity")), "models", "backtest", "--input", str(csv),
               "--horizons", ",".join(map(str, HORIZONS)), "--train-fraction", "0.7", "--model", models,
               "--timezone", zone, "--out", str(out)]
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own rusage
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr.seek(0)
        text = stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"backtest --model {models} failed ({process.returncode}):\n{text[-3000:]}")
    report = "\n".join(line for line in text.splitlines() if "\r" not in line and "phase/s" not in line)
    return wall, usage.ru_maxrss / 1024, report


def beside_reference(csv: Path, forecasts: Path, zone: str):
    """The last run's MAE per model and horizon beside :mod:`gbm_reference`'s, on the same data and split."""
    from gbm_reference import mae_beside_reference

    from models.backtest import read_series_csv, train_end_of

    data = read_series_csv(csv, zone)
    return mae_beside_reference(data, train_end_of(data.panel, HORIZONS, 0.7), forecasts, HORIZONS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=20)
    parser.add_argument("--days", type=float, default=100)
    parser.add_argument("--interval-min", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--gaps", type=float, default=0.01, help="share of the rows left out at random")
    parser.add_argument("--models", default="all")
    args = parser.parse_args()
    print(f"bench_backtest: {args.series} series x {args.days:g} days of {args.interval_min}-minute counts; load average {load_average()}")
    with tempfile.TemporaryDirectory(prefix="bench_backtest_") as folder:
        csv = Path(folder) / "detectors.csv"
        started = time.perf_counter()
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            rows, series, mean, zone = pool.submit(write_detector_counts, csv, args.series, args.days,
                                                   args.interval_min, args.seed, args.gaps).result()
        print(f"data: {rows:,} rows, {series} series, mean {mean:.1f} vehicles per interval, made in "
              f"{time.perf_counter() - started:.1f} s ({csv.stat().st_size / 2**20:.1f} MiB); time zone {zone}")
        results = {}
        for label, models in (("baselines alone", BASELINES), (f"--model {args.models}", args.models)):
            out = Path(folder) / "forecasts.csv"
            wall, peak, report = run_backtest(csv, models, out, zone)
            with out.open() as handle:
                written = sum(1 for _ in handle) - 1
            results[label] = (wall, peak, written)
            print(f"\n{label}: {wall:.1f} s, peak memory {peak:,.0f} MiB, "
                  f"{written:,} forecasts written; load average {load_average()}\n{report}")
        started = time.perf_counter()
        table, pairs = beside_reference(csv, out, zone)
        print(f"\nMAE beside a tuned gradient-boosting reference (bench/gbm_reference.py), on the {pairs.min():,}-"
              f"{pairs.max():,} pairs per horizon that both forecast; fitted in {time.perf_counter() - started:.0f} s; "
              f"load average {load_average()}\n{table.round(3).to_string()}")
    print(f"\n{'run':<24} {'wall s':>8} {'peak MiB':>9} {'forecasts':>12}")
    for label, (wall, peak, written) in results.items():
        print(f"{label:<24} {wall:8.1f} {peak:9,.0f} {written:12,}")
    total = results[f"--model {args.models}"][0]
    print(f"target: the backtest in minutes on 2 cores: {total / 60:.1f} min -> {'met' if total < 600 else 'NOT met'}"
          f" (under 10 min); load average {load_average()}")


if __name__ == "__main__":
    main()
