"""Structured logs: one JSON object per line, carrying the function, the event, the request and the trace.

The runtime sets the function and event id in context variables around each handler call
(:func:`log_context`), the gateway the request id (``X-Request-Id``) around each request, and
:mod:`smartcity.runtime.tracing` the current trace, so every log line a handler writes with ``context.logger``
names them without the handler passing them along. :mod:`smartcity.runtime.logship` ships these lines to the log
store.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any, Iterator, Sequence

from smartcity.runtime import tracing

_function: ContextVar[str | None] = ContextVar("smartcity_function", default=None)
_event_id: ContextVar[str | None] = ContextVar("smartcity_event_id", default=None)
_request_id: ContextVar[str | None] = ContextVar("smartcity_request_id", default=None)
_trace_ids: ContextVar[str | None] = ContextVar("smartcity_trace_ids", default=None)
_FIELDS = (("function", _function), ("event_id", _event_id), ("request_id", _request_id), ("trace_id", _trace_ids))


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ``service`` (gateway, trigger, a function's name) names the process."""

    def __init__(self, service: str | None = None) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.service:
            line["service"] = self.service
        for name, var in _FIELDS:
            value = getattr(record, name, None) or var.get()
            if value:
                line[name] = value
        if (trace := tracing.current()) is not None:
            line.setdefault("trace_id", trace.trace_id)
            line["span_id"] = trace.span_id
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "INFO", service: str | None = None, handlers: Sequence[logging.Handler] = ()) -> None:
    """Send the root logger's records to stderr as JSON lines, and to ``handlers`` (the log spool), replacing any
    handler set before."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler, *handlers]
    root.setLevel(level.upper())


@contextmanager
def log_context(function: str | None = None, event_id: str | None = None, request_id: str | None = None,
                trace_id: str | None = None) -> Iterator[None]:
    """Within the block, log lines name this function, event, request and trace (several ids joined by commas for
    a batch; without ``trace_id``, the current trace's)."""
    values = (function, event_id, request_id, trace_id)
    tokens = [(var, var.set(value)) for (_, var), value in zip(_FIELDS, values, strict=True) if value]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


@contextmanager
def handling(function: str, cloudevents: Sequence[Any]) -> Iterator[None]:
    """Within the block, log lines name the function, the events and their traces, and the events' trace (when
    they share one) is current, so the events the handler makes continue it."""
    trace, trace_ids = tracing.trace_of(cloudevents)
    ids = ",".join(cloudevent.get_id() for cloudevent in cloudevents)
    with log_context(function, ids, trace_id=",".join(trace_ids) or None), tracing.traced(trace):
        yield
