"""The ingest function of a stream without a folder of its own (a ``SMARTCITY_STREAMS_DIR`` descriptor's).

Its stack entry is generated from the descriptor (:mod:`smartcity.runtime.stream_entries`); the stream is the
``STREAM`` variable of that entry's environment. It is :func:`smartcity.ingest.ingest_app`, as every
``functions/ingest-<stream>/handler.py`` is.
"""

from smartcity.errors import ConfigurationError
from smartcity.ingest import ingest_app
from smartcity.runtime import Context, http_function

STREAM_VARIABLE = "STREAM"


@http_function
def create_app(context: Context):
    topic = context.env(STREAM_VARIABLE)
    if not topic:
        raise ConfigurationError(f"functions.{context.name}.environment.{STREAM_VARIABLE}", "names no stream")
    return ingest_app(topic, context)
