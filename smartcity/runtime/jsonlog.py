"""Structured logs: one JSON object per line, carrying the function and the event being handled.

The runtime sets the function and event id in context variables around each handler call
(:func:`log_context`), so every log line a handler writes with ``context.logger`` names them without the
handler passing them along.
"""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Iterator

_function: ContextVar[str | None] = ContextVar("smartcity_function", default=None)
_event_id: ContextVar[str | None] = ContextVar("smartcity_event_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, var in (("function", _function), ("event_id", _event_id)):
            value = getattr(record, name, None) or var.get()
            if value:
                line[name] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: str = "INFO") -> None:
    """Send the root logger's records to stderr as JSON lines (replacing any handler set before)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@contextmanager
def log_context(function: str | None = None, event_id: str | None = None) -> Iterator[None]:
    """Within the block, log lines name this function and event (several ids joined by commas for a batch)."""
    tokens = [(var, var.set(value)) for var, value in ((_function, function), (_event_id, event_id)) if value]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
