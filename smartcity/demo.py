"""The live simulated city in one process: what ``make demo`` (``smartcity demo``) runs.

    simulator --HTTP JSON--> ingest-* functions (gateway) --bus--> store-*, archive-raw (Kafka triggers)
                                                            |         -> database, documents, cache, objects
                                                            +--> Spark streaming jobs -> 5-min aggregates,
                                                                 mobility index, anomalies (-> incidents topic)
    api-* functions (gateway, /v1/...) <- what is stored

Forecasts (:mod:`smartcity.demo_forecasting`): at the start, a background thread simulates what the database
lacks of the ``history_days`` before it (ending where the live city starts, with the same sensor and segment ids);
then the training schedule (:mod:`models.schedule`) trains the chosen models as soon as enough history is stored,
and again every ``training_every_s``. The ``forecast-traffic`` function (a Kafka trigger on ``traffic-windows``,
which the Spark anomalies job publishes for each closed sensor
window) forecasts from the promoted model; the status line counts its forecasts and their rolling error.

Every piece is the platform's own code (the same gateway, triggers, functions and Spark jobs as on a cluster); only
the backends are the embedded ones, under one data folder, unless a ``SMARTCITY_*_URL`` variable names another
(``eval "$(smartcity stack env)"`` first runs the demo on the real local services). All in one process, so the
embedded ``memory://`` cache is shared by the functions that write the latest state and those that read it.
"""

from __future__ import annotations

import itertools
import os
import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import uvicorn

from smartcity.demo_clock import city_start, off_the_clock
from smartcity.demo_forecasting import DemoForecasting, forecast_status
from smartcity.events import platform_topics
from smartcity.settings import PROJECT_ROOT, Settings

DEFAULT_DATA_DIR = PROJECT_ROOT / "var" / "demo"
Say = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path = DEFAULT_DATA_DIR
    fresh: bool = False
    duration_s: float | None = None
    speed: float = 1.0
    streaming: bool = True
    status_every_s: float = 15.0
    history_days: float = 0.0  # simulated history made sure of before the start (0: none)
    start: str = "now"  # when the city starts: now, busy, HH:MM or ISO 8601 (smartcity.demo_clock)
    training_models: str = ""  # trained on a schedule: "xgboost", "xgboost,lstm", "all" ("": no training)
    training_every_s: float = 6 * 3600


def demo_settings(base: Settings, data_dir: Path) -> Settings:
    """``base`` with every embedded store under ``data_dir``, except where the environment names one."""
    embedded = {
        "bus_url": f"file://{data_dir / 'bus'}",
        "database_url": f"sqlite:///{data_dir / 'smartcity.db'}",
        "documents_url": f"embedded:///{data_dir / 'documents.db'}",
        "objects_url": f"file://{data_dir / 'objects'}",
        "secrets_dir": data_dir / "secrets",
        "streaming_checkpoint_dir": data_dir / "checkpoints",
    }
    return base.model_copy(update={k: v for k, v in embedded.items() if f"SMARTCITY_{k.upper()}" not in os.environ})


class Demo:
    """Starts the pieces in dependency order, reports progress, stops them in reverse order."""

    def __init__(self, settings: Settings, options: DemoOptions, say: Say = print) -> None:
        self.settings = settings
        self.options = options
        self.say = say
        self.stopping = threading.Event()
        self.failures: list[str] = []
        self.base_url = f"http://127.0.0.1:{settings.gateway_port}"
        self.simulated = 0
        self.restart_failed_jobs: Callable[[], None] = lambda: None  # set once the streaming jobs run
        # the live city's first moment (its clock starts there once the pieces are up); the history ends there
        self.start = datetime.now(timezone.utc).astimezone()
        self.forecasting = DemoForecasting(settings, options, self.start, self.stopping, say, self.base_url)

    def run(self) -> int:
        """Run until the duration ends, Ctrl-C, or a piece fails; return the exit status."""
        with ExitStack() as stack:
            self.prepare()
            stack.callback(self.say, "demo stopped")
            self.start_forecasting(stack)
            self.start_gateway(stack)
            self.start_triggers(stack)
            if self.options.streaming:
                self.start_streaming(stack)
            self.start_simulator(stack)
            self.say(self.how_to_call())
            self.watch()
        for failure in self.failures:
            self.say(f"failed: {failure}")
        return 1 if self.failures else 0

    def prepare(self) -> None:
        from smartcity.api.auth import create_local_keys
        from smartcity.backends.bus import open_bus
        from smartcity.simulator.city import load_city
        from smartcity.storage.prepare import prepare_storage
        from smartcity.storage.encryption import ensure_keyring

        if self.options.fresh and self.options.data_dir.exists():
            shutil.rmtree(self.options.data_dir)
        self.options.data_dir.mkdir(parents=True, exist_ok=True)
        self.settings.secrets_dir.mkdir(parents=True, exist_ok=True)
        create_local_keys(self.settings.secrets_dir)
        ensure_keyring(self.settings)  # archives, backups and model artifacts encrypted at rest
        self.ingest_key = demo_ingest_key(self.settings.secrets_dir)
        applied = prepare_storage(self.settings)
        self.start = city_start(self.options.start, datetime.now(timezone.utc), load_city().timezone,
                                self.stored_until())
        self.forecasting.start_time = self.start  # the history ends where the live city starts
        bus = open_bus(self.settings.bus_url)
        try:
            bus.create_topics(list(platform_topics()), self.settings.topic_partitions)
        finally:
            bus.close()
        self.say(f"data in {self.options.data_dir}; {len(applied)} migrations applied; topics ready")

    def stored_until(self) -> datetime | None:
        """The newest traffic reading stored (a resumed demo's city goes on after it)."""
        from smartcity.api.timeseries import stored_time
        from smartcity.backends.database import open_database

        database = open_database(self.settings.database_url)
        try:
            newest = database.query("SELECT MAX(observed_at) AS newest FROM traffic_flow")[0]["newest"]
        finally:
            database.close()
        return stored_time(newest) if newest is not None else None

    def start_gateway(self, stack: ExitStack) -> None:
        from smartcity.runtime.gateway import build_gateway

        from smartcity.runtime.internal import sockets

        app = build_gateway(self.settings.stack_file, self.settings)
        # proxy_headers off: the client address is the guard's to read, from trusted proxies only
        config = uvicorn.Config(app, host="127.0.0.1", port=self.settings.gateway_port, log_config=None,
                                log_level="warning", proxy_headers=False)
        bound = sockets(config, self.settings.internal_host, self.settings.gateway_internal_port)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=self._guard("gateway", lambda: server.run(sockets=bound)), name="gateway",
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not start on port {self.settings.gateway_port}")
            time.sleep(0.1)

        def stop() -> None:
            server.should_exit = True
            thread.join(timeout=10)

        stack.callback(stop)
        self.say(f"gateway: {len(app.state.function_apps)} functions on {self.base_url}")

    def start_triggers(self, stack: ExitStack) -> None:
        from prometheus_client import start_http_server

        from smartcity.runtime.loader import load_stack
        from smartcity.runtime.trigger import Triggers

        functions = [f for f in load_stack(self.settings.stack_file, self.settings) if f.spec.topics]
        triggers = Triggers(functions)
        if self.settings.trigger_metrics_port:
            start_http_server(self.settings.trigger_metrics_port, addr=self.settings.internal_host, registry=triggers.metrics.registry)
        triggers.start()
        stack.callback(triggers.stop)
        self.say("triggers: " + ", ".join(f"{f.name} <- {f.spec.trigger}" for f in functions))

    def start_streaming(self, stack: ExitStack) -> None:
        from streaming import metrics
        from streaming.app import (RestartBackoff, close_context, jobs_named, open_context, restart_failed,
                                   start_jobs, stop_jobs, with_audit)
        from streaming.session import build_session

        self.say("streaming: starting Spark (local mode) and the jobs; the first run takes a minute")
        metrics.serve(self.settings.streaming_metrics_port, self.settings.internal_host)
        spark = build_session(self.settings)
        # The demo's console is for its own status lines: a failed micro-batch is reported by the job (its Python
        # error) and by restart_jobs below, without Spark's stack traces of the query it ended.
        spark.sparkContext.setLogLevel("FATAL")
        stack.callback(spark.stop)
        context = open_context(self.settings, spark, trigger_s=self.settings.streaming_trigger_s)
        stack.callback(close_context, context)
        jobs = jobs_named([])
        queries = start_jobs(context, jobs)
        stack.callback(stop_jobs, spark, queries)  # the list: restarted queries are stopped too

        backoff = RestartBackoff()

        def restart_jobs() -> None:  # no supervisor restarts a job here, as Kubernetes would: the demo does
            for name, error in restart_failed(context, with_audit(jobs), queries, backoff).items():
                self.say(f"streaming: job {name} stopped ({error}); restarted from its checkpoint")

        self.restart_failed_jobs = restart_jobs
        self.say(f"streaming: {', '.join(query.name for query in queries)}; "
                 f"metrics on :{self.settings.streaming_metrics_port}/metrics")

    def start_forecasting(self, stack: ExitStack) -> None:
        """In a thread: the missing history, then the training schedule (:mod:`smartcity.demo_forecasting`)."""
        self.forecasting.start(stack, self._guard)

    def start_simulator(self, stack: ExitStack) -> None:
        from smartcity.simulator.clock import CityClock, RateLimiter
        from smartcity.simulator.runner import publish
        from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
        from smartcity.simulator.sinks import HttpSink

        settings = self.settings
        options = SimulatorOptions(start=self.start, seed=settings.simulator_seed,
                                   sensors=settings.simulator_sensors)
        sink = HttpSink(f"{self.base_url}/function/ingest-{{topic}}", "json", api_key=self.ingest_key)

        def simulate() -> None:
            with CitySimulation(options) as simulation:
                ticks = itertools.takewhile(lambda _: not self.stopping.is_set(), simulation.ticks())
                publish(ticks, sink, CityClock(simulation.start, self.options.speed),
                        RateLimiter(settings.simulator_rate_cap), on_tick=self._count)

        thread = threading.Thread(target=self._guard("simulator", simulate), name="simulator", daemon=True)
        thread.start()

        def stop() -> None:
            self.stopping.set()
            thread.join(timeout=30)
            sink.close()

        stack.callback(stop)
        self.say(f"simulator: the city from {options.start:%a %H:%M:%S %Z} at x{self.options.speed:g}, "
                 f"posting to {self.base_url}/function/ingest-<stream>")
        if off_the_clock(self.start, datetime.now(timezone.utc)):
            self.say("  (not the wall-clock hour: a busy hour, or where this data folder's city stopped; "
                     "--start now runs the city at the wall clock, --fresh starts over)")

    def how_to_call(self) -> str:
        from smartcity.api.auth import KeyRing, Role, issue_token
        from smartcity.api.usage import how_to_call
        from smartcity.events.common import ngsi_id
        from smartcity.simulator.network import traffic_loops

        token = issue_token(KeyRing(self.settings), "demo", Role.viewer, ttl=timedelta(hours=1))
        segment = ngsi_id("RoadSegment", traffic_loops()[0].edge)  # one with a loop: forecast
        at = self.start if off_the_clock(self.start, datetime.now(timezone.utc)) else None
        return how_to_call(self.base_url, token, segment_id=segment, city_start=at)

    def watch(self) -> None:
        """Print what has reached each stage every few seconds, until the end."""
        deadline = time.monotonic() + self.options.duration_s if self.options.duration_s else None
        try:
            while not self.stopping.is_set():
                remaining = (deadline - time.monotonic()) if deadline else self.options.status_every_s
                if remaining <= 0:
                    break
                self.stopping.wait(min(self.options.status_every_s, remaining))
                self.say(self.status_line())
                self.restart_failed_jobs()
        except KeyboardInterrupt:
            self.say("stopping (Ctrl-C)")
        self.stopping.set()

    def status_line(self) -> str:
        from smartcity.backends.database import open_database
        from smartcity.storage.tables import STREAM_TABLES

        database = open_database(self.settings.database_url)
        try:
            stored = sum(database.query(f"SELECT count(*) AS n FROM {table.table}")[0]["n"]
                         for table in STREAM_TABLES.values())
            windows = database.query("SELECT count(*) AS n FROM traffic_sensor_5min")[0]["n"]
            forecasts = forecast_status(database)
        finally:
            database.close()
        return f"simulated {self.simulated} events; stored {stored} rows; {windows} sensor 5-min windows; {forecasts}"

    def _count(self, tick, report) -> None:
        self.simulated = report.events

    def _guard(self, name: str, target: Callable[[], None], fatal: bool = True) -> Callable[[], None]:
        """Run ``target``; a failure is reported instead of dying silently in a thread, and stops the demo if
        ``fatal`` (otherwise the rest goes on: without history, the demo still runs, without forecasts)."""

        def run() -> None:
            try:
                target()
            except Exception as error:  # noqa: BLE001 - reported (and ends the demo if fatal)
                self.failures.append(f"{name}: {type(error).__name__}: {error}")
                if fatal:
                    self.stopping.set()
                else:
                    self.say(f"{name} failed (the demo goes on): {type(error).__name__}: {error}")

        return run


def demo_ingest_key(secrets_dir: Path) -> str:
    """A fresh API key for the demo's simulator (every stream; the former demo key dropped), also written to the
    client's secret file ingest-api-key; the secrets folder is marked as the demo's: production mode refuses it."""
    from smartcity.runtime.credentials import ALL_STREAMS, add_ingest_key
    from smartcity.runtime.production import DEMO_MARK, DEMO_SOURCE

    from smartcity.ingest_client import CLIENT_API_KEY_SECRET

    (secrets_dir / DEMO_MARK).write_text("made by `smartcity demo`: not for production\n")
    key = add_ingest_key(secrets_dir, DEMO_SOURCE, [ALL_STREAMS], replace=True)
    client_key = secrets_dir / CLIENT_API_KEY_SECRET  # for `smartcity simulate --sink http` against the demo
    client_key.touch(mode=0o600, exist_ok=True)
    client_key.write_text(key + "\n")
    return key
