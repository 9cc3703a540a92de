"""ingest-air-quality: readings of the air-quality stream (JSON or CSV, one or a batch) onto its topic.

Air quality station observations.
:mod:`smartcity.ingest` says what a reading may look like and what the answer says.
"""

from smartcity.ingest import ingest_app
from smartcity.runtime import Context, http_function


@http_function
def create_app(context: Context):
    return ingest_app("air-quality", context)
