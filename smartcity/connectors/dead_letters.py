"""What a connector could not deliver, on the dead-letter topic as the runtime puts it there.

Each dead letter is a CloudEvent with Knative's error extensions (``knativeerrorcode``, ``knativeerrordata``: the
problem document base64-encoded, ``knativeerrordest``), so the ``dead-letter-archive`` function keeps it with the
others. A malformed feed (400) carries the feed's URL and the start of its body; a reading ingest refused (422)
carries the reading, its personal fields withheld: only ingest holds the pseudonym key, so the connector cannot
pseudonymize them, and the dead-letter topic and archive must not keep them raw (a shared vehicle's id, a taxi's
plate). The reasons still name every field.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any, Callable

from smartcity.backends.bus import EventBus
from smartcity.errors import problem
from smartcity.events import STREAMS
from smartcity.runtime.bindings import error_data
from smartcity.runtime.events import new_event
from smartcity.runtime.publishing import Publisher
from smartcity.settings import DEAD_LETTER_TOPIC

MALFORMED_TYPE = "city.connector.feed.malformed.v1"
REFUSED_TYPE = "city.connector.reading.refused.v1"
BODY_EXCERPT = 2048
WITHHELD = "(personal: withheld)"
_SALT = secrets.token_bytes(32)


class DeadLetters:
    """Publishes a connector's dead letters on ``topic`` of ``bus``."""

    def __init__(self, bus: Callable[[], EventBus], partitions: int, topic: str = DEAD_LETTER_TOPIC) -> None:
        self.publisher = Publisher(bus, topic, partitions)

    def malformed_feed(self, kind: str, error: Any) -> None:
        """``error``: a :class:`smartcity.connectors.polling.MalformedFeed`."""
        data = {"url": error.url, "body": base64.b64encode(error.body[:BODY_EXCERPT]).decode("ascii")}
        details = problem(400, f"malformed {kind} feed: {error.reason}", {error.field: error.reason},
                          instance=error.url)
        self._publish(MALFORMED_TYPE, kind, error.url, data, details.model_dump(mode="json"), error.url)

    def refused_reading(self, kind: str, ingest_url: str, reading: Any, reasons: dict[str, str]) -> None:
        """``reading``: a :class:`smartcity.connectors.polling.Reading` ingest refused, ``reasons`` by field."""
        stream = STREAMS.get(reading.topic)
        personal = set(stream.personal_fields) if stream else set()
        data = {name: WITHHELD if name in personal else value for name, value in reading.data.items()}
        key_withheld = stream is not None and stream.key_field in personal  # the entity's key is the personal id
        about = f"a {reading.topic} reading" if key_withheld else f"the {reading.topic} reading of {reading.key}"
        details = problem(422, f"ingest refused {about}", reasons, instance=ingest_url)
        self._publish(REFUSED_TYPE, kind, reading.topic if key_withheld else reading.key, data,
                      details.model_dump(mode="json"), ingest_url, salt=reading.key if key_withheld else "")

    def _publish(self, ce_type: str, kind: str, key: str, data: dict[str, Any], details: dict[str, Any],
                 destination: str, salt: str = "") -> None:
        # a withheld key still tells readings apart, through a process's secret salt (no guessable hash of the id)
        salted = hmac.new(_SALT, salt.encode(), hashlib.sha256).hexdigest() if salt else ""
        digest = hashlib.sha256(repr((ce_type, key, salted, sorted(data.items(), key=str))).encode()).hexdigest()[:32]
        event = new_event(ce_type, f"/smartcity/connectors/{kind}", data, id=digest, partitionkey=key,
                          knativeerrorcode=str(details["status"]), knativeerrordata=error_data(details),
                          knativeerrordest=destination)
        self.publisher.publish([event])
