"""Record the simulated city to a file, and replay it.

A recording is JSON lines, one structured CloudEvent per line (``application/cloudevents+json``), in the order
published; the readings are raw, as the simulator made them (the simulated taxi ids are made up). Replaying
reads them back tick by tick (events of one city time together), validating each against its stream's model:
a damaged line stops the replay with its line number and the fields at fault.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from cloudevents.core.formats.json import JSONFormat
from pydantic import ValidationError

from smartcity.events import UnknownStreamError, errors_by_field, stream_for_type
from smartcity.runtime.events import build_event
from smartcity.simulator.simulation import Tick
from smartcity.simulator.sinks import cloud_event

JSON_FORMAT = JSONFormat()


class RecordingError(ValueError):
    """A line of a recording is not an event of a known stream; names the file, the line and the reason."""


class Recorder:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("wb")

    def write(self, tick: Tick) -> None:
        for stream, events in tick.events:
            for event in events:
                self._file.write(JSON_FORMAT.write(cloud_event(stream, event)) + b"\n")

    def close(self) -> None:
        self._file.close()


def read_recording(path: Path) -> Iterator[Tick]:
    """The recording's ticks; consecutive events with the same time form one tick."""
    tick: Tick | None = None
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                event = JSON_FORMAT.read(build_event, line)
                stream = stream_for_type(event.get_type())
                reading = stream.model.model_validate(event.get_data())
            except ValidationError as error:
                raise RecordingError(f"{path}:{number}: {json.dumps(errors_by_field(error))}") from None
            except (ValueError, UnknownStreamError) as error:
                raise RecordingError(f"{path}:{number}: {error}") from None
            if tick is None or event.get_time() != tick.time:
                if tick is not None:
                    yield tick
                tick = Tick(event.get_time())
            if tick.events and tick.events[-1][0] is stream:
                tick.events[-1][1].append(reading)
            else:
                tick.events.append((stream, [reading]))
    if tick is not None:
        yield tick
