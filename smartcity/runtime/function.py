"""The function contract: what ``functions/<name>/handler.py`` exposes, marked by one of two decorators.

A CloudEvent function (triggered by Kafka topics or by HTTP)::

    @cloudevent_function(data=TrafficFlowObserved)
    def handle(event: Event[TrafficFlowObserved], context: Context) -> CloudEvent | list[CloudEvent] | None:
        ...

With ``batch=N`` the handler takes ``list[Event[...]]`` (up to N at once) and is called once per batch, which
is how the store functions write to PostgreSQL in bulk. Whatever CloudEvents it returns, the runtime publishes.
With ``idempotent=True`` the handler keeps each event once by its id itself (a primary key) and returns nothing,
so the runtime skips its own dedup marks (two cache round trips per batch) for it.

An HTTP function is a factory of an ASGI app (a FastAPI app), served under ``/function/<name>``::

    @http_function
    def create_app(context: Context) -> FastAPI:
        ...

The decorators return the function unchanged (so a ``handler_test.py`` can call it directly) and attach the
description the loader looks for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ValidationError

from smartcity.events import errors_by_field
from smartcity.runtime.events import Event, InvalidEvent

if TYPE_CHECKING:
    from smartcity.runtime.context import Context

HANDLER_ATTRIBUTE = "__smartcity_function__"


@dataclass(frozen=True)
class CloudEventHandler:
    """A CloudEvent handler, the model of its events' data, and how many events it takes at once."""

    handle: Callable[..., Any]
    data_model: type[BaseModel] | None
    batch_size: int | None
    idempotent: bool = False

    @property
    def is_batch(self) -> bool:
        return self.batch_size is not None

    def typed(self, cloudevent: CloudEvent) -> Event[Any]:
        """The event with its data validated into the model; :class:`InvalidEvent` names each bad data field."""
        data = cloudevent.get_data()
        if self.data_model is None:
            return Event(cloudevent, data)
        try:
            if isinstance(data, (str, bytes)):
                model = self.data_model.model_validate_json(data)
            else:
                model = self.data_model.model_validate(data)
        except ValidationError as error:
            fields = {("data" if name == "<event>" else f"data.{name}"): why
                      for name, why in errors_by_field(error).items()}
            raise InvalidEvent(f"invalid data for {self.data_model.__name__}", fields) from None
        return Event(cloudevent, model)

    def call(self, events: list[Event[Any]], context: Context) -> list[CloudEvent]:
        """Run the handler on ``events`` (once for a batch handler, once per event otherwise); its result events."""
        if self.is_batch:
            return self._checked(_result_events(self.handle(events, context), self.handle))
        results: list[CloudEvent] = []
        for event in events:
            results.extend(_result_events(self.handle(event, context), self.handle))
        return self._checked(results)

    def _checked(self, results: list[CloudEvent]) -> list[CloudEvent]:
        # Without dedup marks a redelivery would publish an idempotent handler's results again.
        if results and self.idempotent:
            raise TypeError(f"{self.handle.__module__}.{self.handle.__qualname__} is marked idempotent and "
                            "returned events: only a handler that returns none may skip the runtime's dedup")
        return results


@dataclass(frozen=True)
class HttpHandler:
    """An HTTP function: a factory that builds its ASGI app from the function's context."""

    create_app: Callable[[Context], Any]


def _result_events(result: Any, handler: Callable[..., Any]) -> list[CloudEvent]:
    if result is None:
        return []
    if isinstance(result, CloudEvent):
        return [result]
    if isinstance(result, Iterable) and not isinstance(result, (str, bytes, dict)):
        events = list(result)
        if all(isinstance(event, CloudEvent) for event in events):
            return events
    raise TypeError(
        f"{handler.__module__}.{handler.__qualname__} returned {type(result).__name__}: a CloudEvent handler "
        "returns None, a CloudEvent or a list of CloudEvents (make them with context.new_event)"
    )


def cloudevent_function(
    data: type[BaseModel] | None = None, *, batch: int | None = None, idempotent: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a CloudEvent handler. ``data``: the pydantic model of the events' data (None: raw data).
    ``batch``: the most events handed at once to a handler that takes a list (None: one event per call).
    ``idempotent``: a redelivered event changes nothing in what the handler writes, and it returns no events, so
    the runtime's dedup marks are not needed."""
    if batch is not None and batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    if data is not None and not (isinstance(data, type) and issubclass(data, BaseModel)):
        raise TypeError(f"data must be a pydantic model class, got {data!r}")

    def mark(handle: Callable[..., Any]) -> Callable[..., Any]:
        setattr(handle, HANDLER_ATTRIBUTE, CloudEventHandler(handle, data, batch, idempotent))
        return handle

    return mark


def http_function(create_app: Callable[[Context], Any]) -> Callable[[Context], Any]:
    """Mark the factory of an HTTP function's ASGI app; it is called once, with the function's context."""
    setattr(create_app, HANDLER_ATTRIBUTE, HttpHandler(create_app))
    return create_app


def handler_of(module: Any) -> CloudEventHandler | HttpHandler:
    """The one handler a ``handler.py`` module marks; an error naming the module when there are none or several."""
    found = {
        id(description): description
        for value in vars(module).values()
        if (description := getattr(value, HANDLER_ATTRIBUTE, None)) is not None
    }
    if len(found) != 1:
        raise LookupError(
            f"{module.__file__} must mark exactly one handler with @cloudevent_function or @http_function; "
            f"found {len(found)}"
        )
    return next(iter(found.values()))
