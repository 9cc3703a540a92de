"""The one HTTP client of the ingest functions: readings POSTed the way a device sends them.

The connectors (:mod:`smartcity.connectors`) and the simulator's HTTP sink (:class:`smartcity.simulator.sinks.HttpSink`)
both send through :class:`IngestClient`. The ingest function (behind the gateway,
``<gateway>/function/ingest-<topic>``) validates, enriches, pseudonymizes and publishes; a client never writes a
stream's topic itself.

- **Where**: a URL with ``{topic}`` in it is a template (``http://gw:8080/function/ingest-{topic}``, in a cluster
  ``http://ingest-{topic}.smartcity.svc.cluster.local``); a bare gateway (no path) gets ``/function/ingest-<topic>``;
  any other URL is one function's, used as it is.
- **Batches**: at most :data:`BATCH` readings a request, as a JSON array or as CSV (``lon``/``lat`` columns), the
  two bodies ingest takes.
- **Credentials**: the client's ingest API key (the secret file ``ingest-api-key``, :func:`client_api_key`) in
  ``X-API-Key``: the ingest functions take no anonymous readings.
- **Answers**: 2xx takes the batch. 422 refuses some readings: they come back by index, each with the problem's
  reason per field (its ``errors`` are ``[index].field``). 408, 429, 5xx and no answer at all are retried with
  capped exponential backoff (a ``Retry-After`` wins), then raise :class:`IngestUnavailable`; so do 401, 403 and
  404 at once (the client's credentials or route, no fault of the readings). Any other 4xx (the body's size or
  media type) refuses the batch as a whole, each reading under ``<request>``. Messages carry the problem+json's
  status, title, detail and fields.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx

from smartcity.settings import Settings

ROUTE = "/function/ingest-{topic}"
# Readings per request: well under ingest's limit (smartcity.ingest.MAX_ITEMS) and the gateway's body limit.
BATCH = 1000
CLIENT_API_KEY_SECRET = "ingest-api-key"  # the plain key a client holds (the functions hold only digests)
RETRIES = 5
FIRST_WAIT_S, MAX_WAIT_S = 0.5, 10.0
UNAVAILABLE = frozenset({401, 403, 404})
BODY_FORMATS = ("json", "csv")

Refusals = dict[int, dict[str, str]]  # reading index -> {field: reason}


class IngestUnavailable(RuntimeError):
    """The ingest function did not take the batch (no answer, 5xx, 429 after the retries, credentials or route
    refused); nothing of it was published."""


class IngestClient:
    """POSTs batches of readings of a topic to its ingest function (see the module docstring)."""

    def __init__(self, url: str, client: httpx.Client | None = None, api_key: str | None = None,
                 body_format: str = "json", retries: int = RETRIES,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if body_format not in BODY_FORMATS:
            raise ValueError(f"format must be one of {', '.join(BODY_FORMATS)}, not {body_format!r}")
        self.url = url.rstrip("/")
        self.client = client or httpx.Client(timeout=30.0)
        self.body_format = body_format
        self.headers = {"x-api-key": api_key} if api_key else {}
        self.retries = retries
        self._sleep = sleep

    def url_of(self, topic: str) -> str:
        if "{topic}" in self.url:
            return self.url.replace("{topic}", topic)
        return self.url if urlsplit(self.url).path else self.url + ROUTE.format(topic=topic)

    def send(self, topic: str, readings: Sequence[dict[str, Any]]) -> Refusals:
        """Publish ``readings`` of ``topic``, :data:`BATCH` a request; the refused ones by index."""
        refused: Refusals = {}
        for start in range(0, len(readings), BATCH):
            chunk = self._post(self.url_of(topic), readings[start:start + BATCH])
            refused.update({start + index: reasons for index, reasons in chunk.items()})
        return refused

    def close(self) -> None:
        self.client.close()

    def _post(self, url: str, readings: Sequence[dict[str, Any]]) -> Refusals:
        answer = self._answer(url, *self._body(readings))
        if answer.is_success:
            return {}
        if answer.status_code in UNAVAILABLE:
            raise IngestUnavailable(f"POST {url}: {problem_text(answer)}")
        if answer.status_code == 422 and _problem(answer).get("errors"):
            return refusals(_problem(answer))
        return {index: {"<request>": problem_text(answer)} for index in range(len(readings))}

    def _body(self, readings: Sequence[dict[str, Any]]) -> tuple[bytes, str]:
        if self.body_format == "csv":
            return csv_body(readings).encode(), "text/csv"
        return json.dumps(readings).encode(), "application/json"

    def _answer(self, url: str, body: bytes, content_type: str) -> httpx.Response:
        """The first answer not worth retrying; :class:`IngestUnavailable` when none came in ``retries + 1`` tries."""
        headers = {**self.headers, "content-type": content_type}
        for attempt in range(self.retries + 1):
            try:
                answer = self.client.post(url, content=body, headers=headers)
            except httpx.HTTPError as error:
                failure, wait_s = f"{type(error).__name__}: {error}", backoff_s(attempt)
            else:
                if not transient(answer.status_code):
                    return answer
                failure, wait_s = problem_text(answer), retry_after_s(answer) or backoff_s(attempt)
            if attempt < self.retries:
                self._sleep(wait_s)
        raise IngestUnavailable(f"POST {url}: {failure} ({self.retries + 1} tries)")


def transient(status: int) -> bool:
    """Whether an answer may go better later: a timeout, the gateway's rate limit, a server error."""
    return status in (408, 429) or status >= 500


def backoff_s(attempt: int) -> float:
    return min(MAX_WAIT_S, FIRST_WAIT_S * 2 ** attempt)


def retry_after_s(answer: httpx.Response) -> float | None:
    """The answer's ``Retry-After`` in seconds (at most :data:`MAX_WAIT_S`), None without one in seconds."""
    try:
        return min(MAX_WAIT_S, max(0.0, float(answer.headers["retry-after"])))
    except (KeyError, ValueError):
        return None


def _problem(answer: httpx.Response) -> dict[str, Any]:
    try:
        problem = answer.json()
    except ValueError:
        return {}
    return problem if isinstance(problem, dict) else {}


def problem_text(answer: httpx.Response) -> str:
    """An error answer in a line: its status, and its problem+json's title, detail and fields (else its text)."""
    problem = _problem(answer)
    if not problem.get("title") and not problem.get("detail"):
        return f"{answer.status_code} {answer.text[:300]}".rstrip()
    fields = "; ".join(f"{error.get('field')}: {error.get('reason')}" for error in problem.get("errors", [])[:10])
    parts = [problem.get("title"), problem.get("detail"), fields]
    return f"{answer.status_code} " + " - ".join(str(part) for part in parts if part)


def refusals(problem: dict[str, Any]) -> Refusals:
    """Ingest's 422 problem as ``{reading index: {field: reason}}`` (its fields are ``[index].field``)."""
    refused: Refusals = {}
    for error in problem.get("errors", []):
        located, _, name = error["field"].partition("]")
        refused.setdefault(int(located.lstrip("[")), {})[name.lstrip(".") or "<reading>"] = error["reason"]
    return refused


def client_api_key(settings: Settings) -> str | None:
    """The ingest API key this client holds, from the secret file ``ingest-api-key``; None without one."""
    path = settings.secrets_dir / CLIENT_API_KEY_SECRET
    return (path.read_text().strip() or None) if path.is_file() else None


def csv_body(rows: Sequence[dict[str, Any]]) -> str:
    """Readings as CSV: one column per field, the location as ``lon`` and ``lat``, null as an empty cell."""
    flat = []
    for row in rows:
        row = dict(row)
        location = row.pop("location", None)
        if location is not None:
            row["lon"], row["lat"] = location["coordinates"]
        flat.append({name: "" if value is None else _cell(value) for name, value in row.items()})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return text.getvalue()


def _cell(value: object) -> object:
    return ("true" if value else "false") if isinstance(value, bool) else value
