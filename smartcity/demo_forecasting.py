"""The demo's forecasting half: the simulated history it lacks, then the training schedule, and its status line.

At the start, a background thread simulates what the database lacks of the ``history_days`` before the live city
starts (:func:`smartcity.simulator.history_store.generate_history`, with the same sensor and segment ids); then
the training schedule (:mod:`models.schedule`) trains the chosen models as soon as enough history is stored, and
again every ``training_every_s``. A run that promotes a model is followed at once by forecasts from every sensor's
newest closed window (:meth:`DemoForecasting.forecast_at_once`), so the first ones need not wait for the next
window the streaming job announces. The demo's end stops the schedule (waiting up to :data:`TRAINING_STOP_S` for a
run in progress).
"""

from __future__ import annotations

import threading
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Callable

import httpx

from smartcity.settings import Settings

if TYPE_CHECKING:
    from models.schedule import TrainingSchedule
    from models.training import TrainingResult
    from smartcity.backends.database import Database
    from smartcity.demo import DemoOptions

WINDOW = timedelta(minutes=5)
FORECAST_TARGET = "segment-speed"
TRAINING_STOP_S = 60.0  # how long the end waits for a training run in progress
FORECAST_FUNCTION = "forecast-traffic"
FORECAST_CALL_TIMEOUT_S = 60.0
PROMOTION_SOURCE = "/demo/promotion"  # not the streaming job's: its later announcement is no duplicate of these


class DemoForecasting:
    """History then training, in one background thread of the demo."""

    def __init__(self, settings: Settings, options: DemoOptions, start: datetime, stopping: threading.Event,
                 say: Callable[[str], None], gateway_url: str) -> None:
        self.settings = settings
        self.gateway_url = gateway_url
        self.options = options
        self.start_time = start  # the live city's first moment: the history ends there
        self.stopping = stopping
        self.say = say

    def start(self, stack: ExitStack, guard: Callable[..., Callable[[], None]]) -> None:
        """In a thread: the missing history, then the training schedule; the end (``stack``) stops the schedule.
        ``guard`` reports a failure of the thread (:meth:`smartcity.demo.Demo._guard`)."""
        if not self.options.history_days and not self.options.training_models:
            return
        lock = threading.Lock()
        schedules = []

        def history_then_training() -> None:
            if self.options.history_days:
                self.generate_missing_history()
            with lock:
                if self.options.training_models and not self.stopping.is_set():
                    schedules.append(self.start_training())

        def stop() -> None:
            self.stopping.set()
            with lock:
                for schedule in schedules:
                    schedule.stop(timeout=TRAINING_STOP_S)
                    if schedule.running:
                        self.say(f"training: a run was still going after {TRAINING_STOP_S:g} s; left unfinished")

        threading.Thread(target=guard("history", history_then_training, fatal=False), name="history",
                         daemon=True).start()
        stack.callback(stop)

    def generate_missing_history(self) -> None:
        """Simulate the spans of the ``history_days`` before the start that hold no stored window."""
        from smartcity.backends.database import open_database
        from smartcity.simulator.history import floor_to_step
        from smartcity.simulator.history_store import generate_history

        end = floor_to_step(self.start_time)
        database = open_database(self.settings.database_url, settings=self.settings)
        try:
            spans = missing_history(database, floor_to_step(end - timedelta(days=self.options.history_days)), end)
        finally:
            database.close()
        if not spans:
            self.say(f"history: {self.options.history_days:g} days stored before {end:%Y-%m-%d %H:%M} UTC")
        for first, last in spans:
            self.say(f"history: simulating {first:%Y-%m-%d %H:%M} .. {last:%Y-%m-%d %H:%M} UTC")
            summary = generate_history(self.settings, (last - first) / timedelta(days=1), last)
            self.say(f"history: wrote {sum(summary.rows.values()):,} rows in {summary.seconds:.0f} s")

    def start_training(self) -> TrainingSchedule:
        """The started training schedule of the forecasting models (:func:`models.schedule.scheduled_training`)."""
        from models.schedule import scheduled_training

        schedule = scheduled_training(self.settings, FORECAST_TARGET, every_s=self.options.training_every_s,
                                      say=lambda message: self.say(f"training: {message}"),
                                      on_result=self.forecast_at_once, models=self.options.training_models)
        self.say(f"training: {self.options.training_models} for {FORECAST_TARGET} once {schedule.min_days:g} days "
                 f"of history are stored, then every {self.options.training_every_s / 3600:g} h")
        return schedule

    def forecast_at_once(self, result: TrainingResult) -> None:
        """After a run that promoted a model: every sensor's newest closed window to ``forecast-traffic`` through the
        gateway, as its Kafka trigger delivers them. Its forecasts are upserts: when the trigger delivers one of
        those windows later, it rewrites the same rows."""
        from smartcity.api.auth import KeyRing, Role, issue_token
        from smartcity.backends.database import open_database
        from smartcity.runtime.bindings import Mode, events_to_http
        from smartcity.runtime.readings import window_closed_event

        if result.promoted is None or self.stopping.is_set():
            return
        database = open_database(self.settings.database_url, settings=self.settings)
        try:
            windows = newest_closed_windows(database)
        finally:
            database.close()
        if not windows:
            return
        _, headers, body = events_to_http([window_closed_event(window, PROMOTION_SOURCE) for window in windows],
                                          Mode.BATCH)
        token = issue_token(KeyRing(self.settings), "demo", Role.operator)  # forecast-traffic's caller-role
        response = httpx.post(f"{self.gateway_url}/function/{FORECAST_FUNCTION}", content=body,
                              headers={**headers, "authorization": f"Bearer {token}"},
                              timeout=FORECAST_CALL_TIMEOUT_S)
        if response.status_code >= 300:
            self.say(f"forecasts: {FORECAST_FUNCTION} answered {response.status_code} for the newest windows: "
                     f"{response.text[:200]}")
            return
        self.say(f"forecasts: {FORECAST_FUNCTION} forecast from the {len(windows)} sensor windows of "
                 f"{windows[0].window_start:%H:%M} UTC, the newest closed, after the promotion")


def newest_closed_windows(database: Database) -> list[TrafficWindow]:
    """Every sensor's window of the second newest window start stored: the newest may still be filling."""
    from smartcity.events.derived import TrafficWindow

    rows = database.query(
        "SELECT * FROM traffic_sensor_5min WHERE window_start = (SELECT max(window_start) FROM traffic_sensor_5min "
        "WHERE window_start < (SELECT max(window_start) FROM traffic_sensor_5min)) ORDER BY sensor_id")
    return [TrafficWindow.model_validate(row) for row in rows]


def missing_history(database: Database, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The spans of ``[since, until)`` (5-minute aligned) before the first and after the last stored segment window
    in it: what to generate so that the history reaches back to ``since`` and up to ``until`` (a gap between stored
    windows is left as it is)."""
    row = database.query("SELECT min(window_start) AS first, max(window_start) AS last FROM traffic_segment_5min "
                         "WHERE window_start >= :since AND window_start < :until",
                         {"since": since.astimezone(timezone.utc), "until": until.astimezone(timezone.utc)})[0]
    if row["first"] is None:
        return [(since, until)]
    first, last = _utc(row["first"]), _utc(row["last"]) + WINDOW
    return [(begin, end) for begin, end in ((since, first), (last, until)) if end > begin]


def forecast_status(database: Database) -> str:
    """Forecasts issued, and their mean absolute error over the last hour per model (all horizons): cheap."""
    from smartcity.api.forecasts import forecast_accuracy

    issued = database.query("SELECT count(*) AS n FROM traffic_forecasts")[0]["n"]
    if not issued:
        return "no forecasts yet"
    errors: dict[str, float] = {}
    counts: dict[str, int] = {}
    for row in forecast_accuracy(database, FORECAST_TARGET, hours=1).horizons:
        errors[row.model] = errors.get(row.model, 0.0) + row.mae * row.forecasts
        counts[row.model] = counts.get(row.model, 0) + row.forecasts
    maes = ", ".join(f"{model} {errors[model] / counts[model]:.2f}" for model in errors)
    return f"{issued} forecasts issued" + (f" (speed MAE over the last hour, km/h: {maes})" if maes else "")


def _utc(value: datetime | str) -> datetime:
    """A stored time (ISO text on SQLite) as an aware UTC datetime."""
    return (datetime.fromisoformat(value) if isinstance(value, str) else value).astimezone(timezone.utc)
