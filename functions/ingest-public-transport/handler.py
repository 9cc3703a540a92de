"""ingest-public-transport: readings of the public-transport stream (JSON or CSV, one or a batch) onto its topic.

Bus positions on their GTFS trips, with delays.
:mod:`smartcity.ingest` says what a reading may look like and what the answer says.
"""

from smartcity.ingest import ingest_app
from smartcity.runtime import Context, http_function


@http_function
def create_app(context: Context):
    return ingest_app("public-transport", context)
