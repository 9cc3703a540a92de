"""W3C trace context (``traceparent``, ``tracestate``), carried by CloudEvents' distributed tracing extension.

The gateway takes a request's ``traceparent`` header or starts a trace; the runtime makes the trace of the events a
handler gets current while it runs (:func:`handling`); every event the platform makes (:func:`new_event
<smartcity.runtime.events.new_event>`) carries a child span of the current trace in its ``traceparent`` and
``tracestate`` extension attributes (``ce_traceparent`` headers on Kafka, ``ce-traceparent`` over HTTP), or starts
a trace of its own when none is current. So one reading is followed by its trace id from the gateway, through
Kafka and the triggers, to the function that stores it; every log line names the trace (:mod:`jsonlog`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import BaseModel, ConfigDict

# version 00: 2 hex version, 32 hex trace id, 16 hex parent (span) id, 2 hex flags; all-zero ids are invalid
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
SAMPLED = "01"


class TraceContext(BaseModel):
    """One span's place in a trace: what ``traceparent`` and ``tracestate`` carry."""

    model_config = ConfigDict(frozen=True)

    trace_id: str
    span_id: str
    flags: str = SAMPLED
    tracestate: str | None = None

    @property
    def traceparent(self) -> str:
        return _traceparent(self.trace_id, self.span_id, self.flags)

    def child(self) -> TraceContext:
        """A new span of the same trace (same flags and tracestate)."""
        return self.model_copy(update={"span_id": secrets.token_hex(8)})

    def attributes(self) -> dict[str, str]:
        """The CloudEvents extension attributes (distributed tracing extension) carrying this span."""
        return {"traceparent": self.traceparent, **({"tracestate": self.tracestate} if self.tracestate else {})}


def _traceparent(trace_id: str, span_id: str, flags: str) -> str:
    return f"00-{trace_id}-{span_id}-{flags}"


def start_trace() -> TraceContext:
    return TraceContext(trace_id=secrets.token_hex(16), span_id=secrets.token_hex(8))


def parse(traceparent: str | None, tracestate: str | None = None) -> TraceContext | None:
    """The trace context of a ``traceparent`` value; None when it is absent or not valid (W3C: then restart)."""
    match = _TRACEPARENT.fullmatch((traceparent or "").strip().lower())
    if match is None or not _valid(match):
        return None
    return TraceContext(trace_id=match[2], span_id=match[3], flags=match[4], tracestate=tracestate or None)


_ZERO_TRACE_ID, _ZERO_SPAN_ID = "0" * 32, "0" * 16


def _valid(match: re.Match) -> bool:
    """W3C: version ff and all-zero ids are invalid."""
    return match[1] != "ff" and match[2] != _ZERO_TRACE_ID and match[3] != _ZERO_SPAN_ID


def of_event(cloudevent: Any) -> TraceContext | None:
    """The trace an event carries in its extension attributes, if any."""
    return parse(cloudevent.get_extension("traceparent"), cloudevent.get_extension("tracestate"))


_current: ContextVar[TraceContext | None] = ContextVar("smartcity_trace", default=None)


def current() -> TraceContext | None:
    """The trace of what is being handled now (a request, the events a handler got), if any."""
    return _current.get()


@contextmanager
def traced(trace: TraceContext | None) -> Iterator[None]:
    """Within the block, ``trace`` is current (None: left as it is)."""
    if trace is None:
        yield
        return
    token = _current.set(trace)
    try:
        yield
    finally:
        _current.reset(token)


def trace_of(cloudevents: Sequence[Any]) -> tuple[TraceContext | None, list[str]]:
    """The trace a handler run continues, and the trace ids of its events (for the log lines).

    Events of one trace continue it; a batch of events from several traces continues none of them (the events
    its handler makes start traces of their own), but every log line names all of them."""
    # Matched here rather than through parse(): this runs for every event a trigger hands on, and only the trace
    # continued needs a TraceContext.
    ids: dict[str, Any] = {}
    for cloudevent in cloudevents:
        traceparent = cloudevent.get_extension("traceparent")
        match = _TRACEPARENT.fullmatch(traceparent.strip().lower()) if isinstance(traceparent, str) else None
        if match is not None and match[2] not in ids and _valid(match):
            ids[match[2]] = cloudevent
    if len(ids) != 1:
        return None, list(ids)
    (first,) = ids.values()
    return of_event(first).child(), list(ids)


def outgoing_attributes(extensions: dict[str, Any]) -> dict[str, str]:
    """The tracing attributes of an event being made: none when the caller gave a ``traceparent``, else a child
    span of the current trace, else a new trace."""
    if "traceparent" in extensions:
        return {}
    # Strings made directly, not through TraceContext: this runs for every event the platform makes.
    parent = current()
    if parent is None:
        return {"traceparent": _traceparent(secrets.token_hex(16), secrets.token_hex(8), SAMPLED)}
    attributes = {"traceparent": _traceparent(parent.trace_id, secrets.token_hex(8), parent.flags)}
    if parent.tracestate:
        attributes["tracestate"] = parent.tracestate
    return attributes
