"""The stack entries a ``SMARTCITY_STREAMS_DIR`` stream gets without an edit of stack.yml.

Each such stream without an ``ingest-<topic>`` entry of its own gets one generated from its descriptor, as
``smartcity new-stream`` would write it: the generic ingest handler (``smartcity/ingest_function/``) with
``STREAM: <topic>``, the credentials' secrets of every ingest function (and ``pseudonym-key`` when the model has
personal fields). A function annotated ``smartcity.io/every-stream: "true"`` (the store functions) also reads
the topics of these streams. The platform's own streams are in stack.yml itself (tests/unit/test_streams.py checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from smartcity.events import STREAMS, Stream
from smartcity.privacy import PSEUDONYM_KEY_SECRET

EVERY_STREAM = "smartcity.io/every-stream"
GENERIC_INGEST_DIR = Path(__file__).resolve().parent.parent / "ingest_function"
INGEST_SECRETS = ("ingest-api-keys", "jwt-hs256-key", "jwt-rs256-public.pem")


def ingest_name(stream: Stream) -> str:
    return f"ingest-{stream.topic}"


def ingest_entry(stream: Stream, handler: str) -> dict[str, Any]:
    """The stack entry of a stream's ingest function, its code in ``handler``."""
    name = ingest_name(stream)
    secrets = [*INGEST_SECRETS, *([PSEUDONYM_KEY_SECRET] if stream.personal_fields else [])]
    return {
        "lang": "smartcity-python3",
        "handler": handler,
        "image": f"smartcity/{name}:0.1.0",
        "build_args": {"FUNCTION_NAME": name, "PLATFORM_EXTRAS": "runtime"},
        "secrets": secrets,
        "labels": {"com.openfaas.scale.min": "1", "com.openfaas.scale.max": "10", "com.openfaas.scale.target": "100"},
        "limits": {"memory": "256Mi", "cpu": "1"},
        "requests": {"memory": "128Mi", "cpu": "100m"},
    }


def generated_entries(declared: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The generated ingest entry of each folder stream that ``declared`` (the stack file's functions) lacks."""
    return {ingest_name(stream): ingest_entry(stream, str(GENERIC_INGEST_DIR)) | {"environment": {"STREAM": stream.topic}}
            for stream in STREAMS.from_folder() if ingest_name(stream) not in declared}


def folder_topics() -> tuple[str, ...]:
    """The topics an ``every-stream`` function reads beyond its ``topic`` annotation."""
    return tuple(stream.topic for stream in STREAMS.from_folder())
