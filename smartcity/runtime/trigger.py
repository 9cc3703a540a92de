"""The Kafka trigger: the local equivalent of a Knative KafkaSource (or Broker + Trigger) with a delivery spec.

Each Kafka-triggered function of ``stack.yml`` gets a consumer group of its own (``smartcity-<function>``) on the
topics of its ``topic`` annotation, and a thread that:

1. polls records, in partition order;
2. decodes each one: a CloudEvent passes through, a plain record is wrapped as KafkaSource wraps it
   (type ``dev.knative.kafka.event``, source ``.../kafkasources/<name>#<topic>``, subject
   ``partition:<p>#<offset>``); a malformed event, or data its model refuses, goes to the dead-letter topic at
   once with the reason (``knativeerrorcode`` 400, ``knativeerrordata`` the problem document the function's HTTP
   route answers), as a 4xx is not retried by Knative either;
3. hands the valid events to the function, up to its batch size at a time, in order, skipping those handled
   before (dedup on source and id), retrying a failure with the function's backoff policy; a batch that still
   fails is split and each event tried alone, so one poisoned event does not sink the others; an event that
   still fails goes to the dead-letter topic with the error (``knativeerrorcode`` 500, ``knativeerrordata`` a 500
   problem document with ``function`` and ``attempts``) — unless the error says a backend is out of reach
   (:mod:`runtime.outages`): then nothing is dead-lettered or committed, and the consumer is reopened after a
   pause, so the poll's records come again until the backend is back;
4. flushes the poll's result events together, then marks its events handled (dedup);
5. commits the polled offsets only once every record is handled or dead-lettered: at-least-once, nothing lost.

It runs over any bus: Kafka (``kafka://``) or the embedded log (``file://``), so the demo needs no Kafka.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from cloudevents.core.v1.event import CloudEvent

from smartcity.backends.bus import EventBus, Record
from smartcity.errors import Problem, problem
from smartcity.runtime.bindings import event_from_record, with_extensions, wrap_record, error_data
from smartcity.runtime.delivery import DeliverySpec, Failure, deliver
from smartcity.runtime.events import Event, InvalidEvent
from smartcity.runtime.jsonlog import handling
from smartcity.runtime.loader import LoadedFunction
from smartcity.runtime.metrics import Metrics
from smartcity.runtime.outages import is_outage
from smartcity.runtime.publishing import Publisher
from smartcity.runtime.runner import FunctionRunner

logger = logging.getLogger(__name__)
MIN_POLL_RECORDS = 100
POLL_TIMEOUT_S = 0.5
RECONNECT_DELAY_S = 2.0


@dataclass
class Outcome:
    """What became of one poll's records."""

    handled: int = 0
    dead_lettered: int = 0
    complete: bool = True  # False when a shutdown cut it short: nothing may be committed
    pending: list[Event[Any]] = field(default_factory=list)  # handled, to mark once their results are durable


class FunctionTrigger:
    """Delivers the records of one function's topics to it, one consumer group, one thread."""

    def __init__(self, function: LoadedFunction, metrics: Metrics | None = None) -> None:
        self.runner = FunctionRunner(function)
        self.spec = function.spec
        self.delivery: DeliverySpec = function.spec.delivery
        self.metrics = metrics or Metrics()
        settings = function.context.settings
        self.partitions = settings.topic_partitions
        self.source_prefix = function.spec.kafka_source_uri(settings.knative_namespace)
        self._bus = lambda: function.context.bus
        self.dead_letters = Publisher(self._bus, self.delivery.dead_letter_topic, settings.topic_partitions)
        self.stop_event = threading.Event()
        # a model parses the JSON data once, from the record's bytes (2 in the module docstring)
        self.raw_json = self.runner.handler.data_model is not None

    @property
    def name(self) -> str:
        return self.spec.name

    def run(self) -> None:
        """Consume until :meth:`stop`; a broken consumer is reopened (what it had not committed comes again)."""
        self._bus().create_topics([*self.spec.topics, self.delivery.dead_letter_topic], self.partitions)
        while not self.stop_event.is_set():
            try:
                self._consume(self._bus())
            except Exception:  # noqa: BLE001 - keep the trigger alive; redelivery covers what was in flight
                logger.exception("trigger of %s failed; reopening its consumer in %ss", self.name, RECONNECT_DELAY_S)
                self.stop_event.wait(RECONNECT_DELAY_S)

    def stop(self) -> None:
        self.stop_event.set()

    def _consume(self, bus: EventBus) -> None:
        consumer = bus.consumer(self.spec.consumer_group, list(self.spec.topics), from_beginning=True)
        poll_records = max(self.runner.batch_size, MIN_POLL_RECORDS)
        try:
            while not self.stop_event.is_set():
                records = consumer.poll(timeout_s=POLL_TIMEOUT_S, max_records=poll_records)
                if not records:
                    continue
                outcome = self.process(records)
                if not outcome.complete:  # stopping (the wait ends at once), or a backend is out of reach
                    self.stop_event.wait(RECONNECT_DELAY_S)
                    return
                consumer.commit(records)
        finally:
            consumer.close()

    def process(self, records: Sequence[Record]) -> Outcome:
        """Hand the records' events to the function; dead-letter what cannot be handled; flush those."""
        outcome = Outcome()
        valid: list[Event[Any]] = []
        rejected: list[CloudEvent] = []
        for record in records:
            event, dead = self._decode(record)
            if event is not None:
                valid.append(event)
            else:
                rejected.append(dead)
        for chunk in self.runner.chunks(valid):
            if not self._deliver(chunk, outcome):
                outcome.complete = False
                return outcome
        self.runner.settle(outcome.pending)
        if rejected:
            self.metrics.observe(self.name, 400, 0.0, len(rejected))
            self._dead_letter(rejected, outcome)
        return outcome

    def _decode(self, record: Record) -> tuple[Event[Any] | None, CloudEvent | None]:
        """The record's typed event, or the dead-letter event saying why it has none."""
        try:
            cloudevent = event_from_record(record, self.source_prefix, raw_json=self.raw_json)
        except InvalidEvent as error:
            logger.warning("%s: record %s/%s@%s is not a valid event: %s", self.name, record.topic, record.partition,
                           record.offset, error)
            return None, self._failed(wrap_record(record, self.source_prefix, data=record.value), error.as_problem())
        try:
            return self.runner.typed(cloudevent), None
        except InvalidEvent as error:
            with handling(self.name, [cloudevent]):
                logger.warning("%s: invalid event data: %s", self.name, error)
            return None, self._failed(cloudevent, error.as_problem())

    def _deliver(self, chunk: list[Event[Any]], outcome: Outcome) -> bool:
        """Deliver one chunk with retries; split a failed batch; dead-letter what still fails. False if stopped."""
        started = time.perf_counter()
        result = deliver(lambda: self.runner.handle(chunk), self.delivery, self._log_retry(chunk),
                         self.stop_event.is_set, self.stop_event.wait)
        if not isinstance(result, Failure):
            self.metrics.observe(self.name, 200, time.perf_counter() - started, len(chunk))
            outcome.handled += len(chunk)
            outcome.pending.extend(result[0])
            return True
        if result.stopped or self._outage(result):
            return False
        if len(chunk) > 1:
            logger.warning("%s: a batch of %d failed %d times (%s); trying its events one by one",
                           self.name, len(chunk), result.attempts, result.error)
            return all(self._deliver_alone(event, outcome) for event in chunk)
        self._give_up(chunk[0], result, outcome)
        return True

    def _deliver_alone(self, event: Event[Any], outcome: Outcome) -> bool:
        started = time.perf_counter()
        result = deliver(lambda: self.runner.handle([event]), self.delivery.model_copy(update={"retry": 0}))
        if isinstance(result, Failure):
            if self._outage(result):
                return False
            self._give_up(event, result, outcome)
        else:
            self.metrics.observe(self.name, 200, time.perf_counter() - started)
            outcome.handled += 1
            outcome.pending.extend(result[0])
        return not self.stop_event.is_set()

    def _outage(self, failure: Failure) -> bool:
        if not is_outage(failure.error):
            return False
        logger.error("%s: a backend is out of reach (%s: %s); nothing committed, the records come again in %ss",
                     self.name, type(failure.error).__name__, failure.error, RECONNECT_DELAY_S)
        return True

    def _give_up(self, event: Event[Any], failure: Failure, outcome: Outcome) -> None:
        error = problem(500, f"{type(failure.error).__name__}: {failure.error}", function=self.name,
                        attempts=failure.attempts)
        with handling(self.name, [event.cloudevent]):
            logger.error("%s: dead-lettering after %d attempts: %s", self.name, failure.attempts, error.detail)
        self.metrics.observe(self.name, 500, 0.0)
        self._dead_letter([self._failed(event.cloudevent, error)], outcome)

    def _log_retry(self, chunk: list[Event[Any]]):
        def log(attempt: int, error: BaseException, wait: float) -> None:
            with handling(self.name, [event.cloudevent for event in chunk]):
                logger.warning("%s: attempt %d failed (%s: %s); retrying in %.3fs",
                               self.name, attempt, type(error).__name__, error, wait)
        return log

    def _failed(self, cloudevent: CloudEvent, error: Problem) -> CloudEvent:
        """The dead letter of ``cloudevent``: Knative's error extensions, the data being ``error`` (the problem
        document the function's HTTP route would have answered)."""
        destination = f"/function/{self.name}"
        if error.instance is None:
            error = error.model_copy(update={"instance": destination})
        return with_extensions(cloudevent, knativeerrorcode=str(error.status),
                               knativeerrordata=error_data(error.model_dump(mode="json")),
                               knativeerrordest=destination)

    def _dead_letter(self, events: list[CloudEvent], outcome: Outcome) -> None:
        self.dead_letters.publish(events)
        outcome.dead_lettered += len(events)


class Triggers:
    """The triggers of several functions in one process, one thread each."""

    def __init__(self, functions: Sequence[LoadedFunction], metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()
        untriggered = [function.name for function in functions if not function.spec.topics]
        if untriggered:
            raise ValueError(f"{untriggered} have no `topic` annotation in stack.yml: they are HTTP functions")
        self.triggers = [FunctionTrigger(function, self.metrics) for function in functions]
        for trigger in self.triggers:
            self.metrics.register(trigger.name)
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for trigger in self.triggers:
            thread = threading.Thread(target=trigger.run, name=f"trigger-{trigger.name}", daemon=True)
            thread.start()
            self.threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask every trigger to stop, and wait for each to finish what it is doing (uncommitted work comes again)."""
        for trigger in self.triggers:
            trigger.stop()
        for thread in self.threads:
            thread.join(timeout_s)

    def __enter__(self) -> Triggers:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
