"""Readings into the platform the way a device sends them: POSTed to the stream's ingest function.

The ingest function (through the gateway, ``<gateway>/function/ingest-<topic>``) validates, enriches,
pseudonymizes and publishes; a connector never writes a stream's topic itself. Its 422 names each refused
reading's bad fields (``[index].field``), which the connector dead-letters.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

ROUTE = "/function/ingest-{topic}"
# Readings per request: well under ingest's limit (smartcity.ingest.MAX_ITEMS) and the gateway's body limit.
BATCH = 1000


class IngestUnavailable(RuntimeError):
    """The ingest function did not take the batch (no answer, 5xx, 429, credentials refused): retried with
    backoff, nothing lost."""


class IngestClient:
    """POSTs batches of readings to the ingest functions behind ``gateway``: a gateway (``http://host:port``,
    readings of a topic go to its ``/function/ingest-<topic>``), or a URL with ``{topic}`` in it (in a cluster:
    ``http://ingest-{topic}.smartcity.svc.cluster.local``)."""

    def __init__(self, gateway: str, client: httpx.Client, api_key: str | None = None) -> None:
        self.gateway = gateway.rstrip("/")
        self.client = client
        self.headers = {"content-type": "application/json", **({"x-api-key": api_key} if api_key else {})}

    def url_of(self, topic: str) -> str:
        template = self.gateway if "{topic}" in self.gateway else self.gateway + ROUTE
        return template.replace("{topic}", topic)

    def send(self, topic: str, readings: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
        """Publish ``readings`` of ``topic`` (in requests of at most :data:`BATCH` readings); the refused ones as
        ``{index: {field: reason}}``."""
        refused: dict[int, dict[str, str]] = {}
        for start in range(0, len(readings), BATCH):
            chunk = self._post(self.url_of(topic), readings[start:start + BATCH])
            refused.update({start + index: reasons for index, reasons in chunk.items()})
        return refused

    def _post(self, url: str, readings: list[dict[str, Any]]) -> dict[int, dict[str, str]]:
        try:
            answer = self.client.post(url, content=json.dumps(readings).encode(), headers=self.headers)
        except httpx.HTTPError as error:
            raise IngestUnavailable(f"POST {url}: {type(error).__name__}: {error}") from None
        if answer.status_code == 202:
            return {}
        if answer.status_code == 422:
            return refusals(answer.json())
        # unreachable, overloaded, or the connector's credentials refused: nothing is the readings' fault
        if answer.status_code >= 500 or answer.status_code in (401, 403, 404, 408, 429):
            raise IngestUnavailable(f"POST {url}: {answer.status_code} {answer.text[:300]}")
        # any other 4xx refuses the request as a whole (its size, its media type): each reading is dead-lettered
        reason = f"{answer.status_code}: {answer.text[:300]}"
        return {index: {"<request>": reason} for index in range(len(readings))}


def refusals(problem: dict[str, Any]) -> dict[int, dict[str, str]]:
    """Ingest's 422 problem as ``{reading index: {field: reason}}`` (its fields are ``[index].field``)."""
    refused: dict[int, dict[str, str]] = {}
    for error in problem.get("errors", []):
        located, _, name = error["field"].partition("]")
        refused.setdefault(int(located.lstrip("[")), {})[name.lstrip(".") or "<reading>"] = error["reason"]
    return refused
