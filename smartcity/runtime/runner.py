"""One CloudEvent function's event path, the same behind its HTTP endpoint and its Kafka trigger.

:meth:`FunctionRunner.typed` validates each event's data against the function's model;
:meth:`FunctionRunner.run` drops events handled before (dedup on source and id), calls the handler, publishes
the events it returns, and only then marks the input handled. A crash anywhere before the mark leaves the events
unmarked, so their redelivery runs them again: at-least-once, never at-most-once.
"""

from __future__ import annotations

from typing import Any, Sequence

from cloudevents.core.v1.event import CloudEvent

from smartcity.runtime.dedup import Deduplicator
from smartcity.runtime.events import Event, InvalidEvent
from smartcity.runtime.function import CloudEventHandler
from smartcity.runtime.jsonlog import handling
from smartcity.runtime.loader import LoadedFunction
from smartcity.runtime.publishing import Publisher


class FunctionRunner:
    def __init__(self, function: LoadedFunction) -> None:
        if not isinstance(function.handler, CloudEventHandler):
            raise TypeError(f"function {function.name} is an HTTP function, not a CloudEvent function")
        self.function = function
        self.handler: CloudEventHandler = function.handler
        context = function.context
        self.dedup = Deduplicator(lambda: context.cache, function.name, context.settings.dedup_ttl_s,
                                  enabled=not self.handler.idempotent)
        self.publisher = Publisher(lambda: context.bus, function.spec.output_topic, context.settings.topic_partitions)

    @property
    def name(self) -> str:
        return self.function.name

    @property
    def batch_size(self) -> int:
        return self.handler.batch_size or 1

    def typed(self, cloudevent: CloudEvent) -> Event[Any]:
        return self.handler.typed(cloudevent)

    def typed_all(self, cloudevents: Sequence[CloudEvent]) -> list[Event[Any]]:
        """Every event typed, or one :class:`InvalidEvent` naming each bad field (``[i].data.x`` in a batch)."""
        if len(cloudevents) == 1:
            return [self.typed(cloudevents[0])]
        typed, fields = [], {}
        for index, cloudevent in enumerate(cloudevents):
            try:
                typed.append(self.typed(cloudevent))
            except InvalidEvent as error:
                fields.update({f"[{index}].{name}": why for name, why in error.fields.items()})
        if fields:
            raise InvalidEvent("invalid events in batch", fields)
        return typed

    def chunks(self, events: Sequence[Event[Any]]) -> list[list[Event[Any]]]:
        size = self.batch_size
        return [list(events[start:start + size]) for start in range(0, len(events), size)]

    def run_chunked(self, events: Sequence[Event[Any]]) -> list[CloudEvent]:
        """:meth:`run` over the events, at most the handler's batch size at a time (an HTTP batch request)."""
        return [result for chunk in self.chunks(events) for result in self.run(chunk)]

    def run(self, events: Sequence[Event[Any]]) -> list[CloudEvent]:
        """Handle the events not handled before; publish and return what the handler returns."""
        pending, results = self.handle(events)
        self.settle(pending)
        return results

    def handle(self, events: Sequence[Event[Any]]) -> tuple[list[Event[Any]], list[CloudEvent]]:
        """Run the handler on the events not handled before and queue its results for publishing.

        Nothing is durable yet: :meth:`settle` the returned pending events (the trigger does it once per poll,
        so a poll's results are flushed together)."""
        pending = self.dedup.unseen(events)
        if not pending:
            return [], []
        with handling(self.name, [event.cloudevent for event in pending]):
            results = self.handler.call(pending, self.function.context)
            self.publisher.publish(results, flush=False)
        return pending, results

    def settle(self, pending: Sequence[Event[Any]]) -> None:
        """Make the queued results durable, then mark ``pending`` handled; raise if the results were not written."""
        self.publisher.flush()
        self.dedup.mark(pending)
