"""Centralized logs: every process's JSON log lines, through the spool, to a store speaking the Elasticsearch bulk
API (VictoriaLogs locally, Elasticsearch or OpenSearch in production).

:func:`configure` is what each process (gateway, triggers, a function's container) calls at startup: JSON lines on
stderr as before and, when ``SMARTCITY_LOGS_URL`` is set, into the spool (:mod:`smartcity.runtime.logspool`) too. A
:class:`Shipper` thread seals the spool every second and posts each batch to ``<logs_url>/_bulk`` as NDJSON (a
``create`` action into the index ``smartcity-logs`` before each line); a batch is deleted only after a 2xx, and a
failure (store down, refused) is retried with exponential backoff, so lines written while the store is down arrive
when it is back. The ``VL-*`` headers tell VictoriaLogs which fields are the message and the time; Elasticsearch
ignores them.
"""

from __future__ import annotations

import atexit
import json
import logging
import sys
import threading
from pathlib import Path

import httpx

from smartcity.runtime import jsonlog
from smartcity.runtime.logspool import Spool, SpoolHandler
from smartcity.settings import Settings

LOG_INDEX = "smartcity-logs"
SEAL_EVERY_S = 1.0
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0
POST_TIMEOUT_S = 10.0
BULK_HEADERS = {
    "Content-Type": "application/x-ndjson",
    "VL-Msg-Field": "message",
    "VL-Time-Field": "time",
    "VL-Stream-Fields": "service",
}
_ACTION = json.dumps({"create": {"_index": LOG_INDEX}})
_shipping = threading.local()  # set while this thread posts: the HTTP client's own log lines stay out of the spool


def bulk_body(lines: bytes) -> bytes:
    """The ``_bulk`` request body of spooled JSON lines: each one preceded by its ``create`` action."""
    return b"".join(f"{_ACTION}\n".encode() + line + b"\n" for line in lines.splitlines() if line.strip())


class Shipper:
    """The thread posting the spool's batches to ``<logs_url>/_bulk``, oldest first, until each one is taken."""

    def __init__(self, spool: Spool, logs_url: str, max_backoff_s: float = MAX_BACKOFF_S) -> None:
        self.spool = spool
        self.bulk_url = logs_url.rstrip("/") + "/_bulk"
        self.max_backoff_s = max_backoff_s
        self.failures = 0  # consecutive failed posts
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = httpx.Client(timeout=POST_TIMEOUT_S)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self._backoff() if self.failures else SEAL_EVERY_S)
            self.ship()

    def _backoff(self) -> float:
        return min(FIRST_BACKOFF_S * 2 ** (self.failures - 1), self.max_backoff_s)

    def ship(self) -> bool:
        """Seal the spool and post its batches; whether all of them were taken (a failure stops at that batch)."""
        _shipping.active = True
        try:
            return self._ship()
        finally:
            _shipping.active = False

    def _ship(self) -> bool:
        self.spool.seal()
        for batch in self.spool.batches():
            if not self._post(batch):
                self.failures += 1
                return False
            self.spool.done(batch)
        self.failures = 0
        return True

    def _post(self, batch: Path) -> bool:
        try:
            body = bulk_body(batch.read_bytes())
        except FileNotFoundError:
            return True  # dropped by the spool's bound meanwhile
        if not body:
            return True
        try:
            response = self._client.post(self.bulk_url, content=body, headers=BULK_HEADERS)
        except httpx.HTTPError as error:
            self._report(f"cannot reach {self.bulk_url}: {error}")
            return False
        if not response.is_success:
            self._report(f"{self.bulk_url} answered {response.status_code}: {response.text[:200]}")
            return False
        if _bulk_errors(response):
            # Per-line refusals (mapping conflicts) would be refused again: reported, not retried.
            self._report(f"{self.bulk_url} refused some lines of {batch.name}: {response.text[:300]}")
        return True

    def _report(self, message: str) -> None:
        # On stderr only: a log line about shipping logs would go into the very spool that cannot be shipped.
        if self.failures in (0, 1) or self.failures % 20 == 0:
            print(f"log shipper: {message} (keeping the lines in {self.spool.directory})", file=sys.stderr)

    def stop(self, flush: bool = True) -> None:
        """Stop the thread; with ``flush``, try once more to post what is spooled (what fails stays spooled).
        Stopping a stopped shipper does nothing."""
        if self._client.is_closed:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(POST_TIMEOUT_S + 1)
        if flush:
            self.ship()
        self.spool.close()
        self._client.close()


class NotWhileShipping(logging.Filter):
    """Keeps out of the spool what is logged while posting it (httpx logs each request): else every post would
    log a line to post."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_shipping, "active", False)


def _bulk_errors(response: httpx.Response) -> bool:
    try:
        return bool(response.json().get("errors"))
    except ValueError:
        return False


_running: list[Shipper] = []  # the shipper configure started in this process: one at a time


def configure(settings: Settings, service: str) -> Shipper | None:
    """JSON log lines of this process (``service`` names it in every line) on stderr, and shipped to
    ``settings.logs_url`` through the spool when it is set; returns the running shipper, if any. Called again, it
    stops the shipper it started before (two would post the same batches)."""
    while _running:
        previous = _running.pop()
        atexit.unregister(previous.stop)
        previous.stop()
    shipper = None
    handlers: list[logging.Handler] = []
    if settings.logs_url:
        spool = Spool(settings.logs_spool_dir, settings.logs_spool_max_bytes)
        shipper = Shipper(spool, settings.logs_url)
        handlers.append(SpoolHandler(spool, jsonlog.JsonFormatter(service)))
        shipper.start()
        atexit.register(shipper.stop)
        _running.append(shipper)
    jsonlog.configure(settings.log_level, service, handlers)
    if shipper is not None:
        for handler in logging.getLogger().handlers:  # stderr too: no line per post; failures are reported
            handler.addFilter(NotWhileShipping())
    return shipper
