"""One descriptor per data stream: everything the platform needs to know to carry a stream end to end.

A stream is one module holding a :class:`Stream` named ``STREAM``: ``smartcity/streams/<name>.py`` for the
platform's own, or a ``*.py`` file of the folder ``SMARTCITY_STREAMS_DIR`` names for a city's own sensors. The
registry (:mod:`smartcity.streams._registry`) finds them all, and every part of the platform reads them from
``smartcity.events.STREAMS``:

- the **schema** is the descriptor's pydantic ``model`` (a :class:`smartcity.events.CityEvent`);
- the **topic**, the **CloudEvent type** and the Kafka **record key** (``key_field``) are its own fields;
- the **table** (``table``, default the topic in snake_case) has one column per model field
  (:mod:`smartcity.storage.tables`), indexed with ``observed_at`` on ``indexes``;
- the **ingest function** ``ingest-<topic>`` is the generic one (:func:`smartcity.ingest.ingest_app`), in its
  stack.yml entry or, when it has none, served as generated from the descriptor (:mod:`smartcity.runtime.stackfile`);
- the **latest state** is kept per ``latest_field`` (default the record key) by store-latest;
- a sample reading (``example``) for its tests, and a simulator ``source`` if it has one;
- an **API listing** ``/v1/<api_group>/<topic>`` (a page of latest states and one by id) when ``api_group`` names
  an API function's group (:mod:`smartcity.api.stream_routes`).

``smartcity new-stream NAME`` writes a descriptor, its ingest function and its tests; docs/adding-a-sensor-type.md
says the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # smartcity.events imports this package: no import of it at run time here
    from smartcity.events.common import CityEvent

TOPIC_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
DEFAULT_INDEXES = ("entity_id", "zone_id")


class UnknownStreamError(KeyError):
    """A topic or CloudEvent type that no stream has; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Stream:
    """One data stream: where it flows, how its events are typed and keyed, where they are kept and listed."""

    topic: str
    ce_type: str
    model: type[CityEvent]
    key_field: str
    description: str
    table: str = ""  # default: the topic in snake_case
    indexes: tuple[str, ...] = DEFAULT_INDEXES
    latest_field: str = ""  # whose latest state the cache keeps; default: key_field
    api_group: str | None = None  # serve /v1/<api_group>/<topic> from that group's API function
    # A reading's own values (no id, time, location or zone): the sample of tests and docs; the eight's are in tests/.
    example: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    # The simulator's source of the stream, if any: a class (or callable) taking the simulator's SourceContext and
    # giving a smartcity.simulator.source.Source; `smartcity simulate --streams <topic>` runs it.
    source: Callable[[Any], Any] | None = field(default=None, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not TOPIC_NAME.fullmatch(self.topic):
            raise ValueError(f"topic {self.topic!r}: lowercase letters and digits in words joined by '-'")
        for name in (self.key_field, self.latest_field or self.key_field):
            if name not in self.model.model_fields:
                raise ValueError(f"{self.topic}: {self.model.__name__} has no field {name!r}")
        object.__setattr__(self, "table", self.table or self.topic.replace("-", "_"))
        object.__setattr__(self, "latest_field", self.latest_field or self.key_field)

    @property
    def schema_file(self) -> str:
        return f"{self.ce_type}.schema.json"

    def key_of(self, event: CityEvent) -> str:
        """The Kafka record key of ``event``: the value of :attr:`key_field`."""
        return str(getattr(event, self.key_field))

    @property
    def personal_fields(self) -> list[str]:
        from smartcity.events.common import personal_fields

        return personal_fields(self.model)


__all__ = ["DEFAULT_INDEXES", "Stream", "UnknownStreamError"]
