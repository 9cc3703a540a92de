"""Scheduled training, the platform's second stateful workload: a first model as soon as enough history is
stored, then a new training run every period.

:class:`TrainingSchedule` checks how many days of the target's history are stored (every ``poll_s`` seconds while
there are too few), then runs :func:`models.training.train` every ``every_s`` seconds; each run registers its
models and promotes the best only if it beats the promoted one (so a bad run changes nothing that serves). A
failed run is logged and the schedule goes on. ``run()`` blocks (``smartcity models train --every 6h``);
``start()``/``stop()`` run it in a thread (the demo: :func:`scheduled_training`). A run in progress is not
interrupted: ``stop()`` waits for it up to its ``timeout``. ``on_result`` hears of each finished run (the demo
forecasts at once when one promotes a model); its failure is logged and the schedule goes on.

On Kubernetes the same runs are a CronJob (``infra/kubernetes/models-training-cronjob.yaml``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace

from models.registry import Registry
from models.targets import history_span, target_of
from models.training import TrainingError, TrainingOptions, TrainingResult, candidate_names, days_needed, train
from smartcity.backends.database import open_database
from smartcity.backends.objects import open_objects
from smartcity.settings import Settings

log = logging.getLogger(__name__)
DEFAULT_EVERY_S = 6 * 3600
POLL_S = 60.0


class TrainingSchedule:
    """Trains ``options.target`` once ``min_days`` of history are stored, then every ``every_s`` seconds."""

    def __init__(self, settings: Settings, options: TrainingOptions = TrainingOptions(),
                 every_s: float = DEFAULT_EVERY_S, min_days: float | None = None, poll_s: float = POLL_S,
                 say: Callable[[str], None] = log.info,
                 on_result: Callable[[TrainingResult], None] | None = None) -> None:
        needed = days_needed(options)  # TrainingError for options no run could satisfy
        target_of(options.target)
        self.settings, self.options, self.every_s, self.poll_s, self.say = settings, options, every_s, poll_s, say
        self.on_result = on_result
        self.min_days = max(min_days or needed, needed)
        self.results: list[TrainingResult] = []
        self.last_error: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiting = False

    def start(self) -> TrainingSchedule:
        """Run the schedule in a (daemon) thread; returns self."""
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self.run, name=f"training-{self.options.target}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the run in progress (waiting for it at most ``timeout`` seconds)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def run(self) -> None:
        """Train whenever due until :meth:`stop` is called."""
        while not self._stopping.is_set():
            self._stopping.wait(self.run_once())

    def run_once(self) -> float:
        """Train now if enough history is stored; the seconds until the next attempt."""
        with ExitStack() as opened:
            try:
                database = open_database(self.settings.database_url, settings=self.settings)
                opened.callback(database.close)
                objects = open_objects(self.settings.objects_url, settings=self.settings)
                opened.callback(objects.close)
            except Exception as error:  # a store that is not up yet: try again later
                return self._failed(f"cannot open the stores: {error}", self.poll_s)
            try:
                if not self._enough_history(database):
                    return self.poll_s
                result = train(database, Registry(objects, settings=self.settings), self.options, say=self.say)
            except TrainingError as error:
                return self._failed(str(error), self.poll_s)
            except Exception as error:  # one bad run must not end the schedule
                log.exception("training %s failed", self.options.target)
                return self._failed(f"training failed: {error!r}", self.every_s)
        self.results.append(result)
        self.last_error = None
        if self.on_result is not None:
            try:
                self.on_result(result)
            except Exception as error:  # what follows a run must not end the schedule either
                log.exception("after training %s", self.options.target)
                self.say(f"after training: {error!r}")
        return self.every_s

    def _enough_history(self, database) -> bool:
        span = history_span(database, target_of(self.options.target))
        stored = 0.0 if span is None else (span[1] - span[0]).total_seconds() / 86400
        enough = stored >= self.min_days
        if not enough and not self._waiting:
            self.say(f"training {self.options.target}: waiting for {self.min_days:g} days of history "
                     f"({stored:.1f} stored)")
        self._waiting = not enough
        return enough

    def _failed(self, message: str, wait_s: float) -> float:
        if message != self.last_error:
            self.say(message)
        self.last_error = message
        return wait_s


def scheduled_training(settings: Settings, target: str = "segment-speed", every_s: float = DEFAULT_EVERY_S,
                       min_days: float | None = None, say: Callable[[str], None] = log.info,
                       on_result: Callable[[TrainingResult], None] | None = None, **options) -> TrainingSchedule:
    """A started :class:`TrainingSchedule` of ``target``; ``options`` are :class:`TrainingOptions` fields (models,
    as names or ``"xgboost,lstm"``/``"all"``; days, holdout_days, seed, promote ...). ``stop()`` ends it."""
    if isinstance(options.get("models"), str):
        options["models"] = candidate_names(options["models"])
    return TrainingSchedule(settings, replace(TrainingOptions(), target=target, **options), every_s, min_days,
                            say=say, on_result=on_result).start()
