"""ingest-bike-share-vehicles: readings of the bike-share-vehicles stream (JSON or CSV, one or a batch) onto its topic.

Free-floating shared vehicles (GBFS free_bike_status / vehicle_status).
:mod:`smartcity.ingest` says what a reading may look like and what the answer says.
"""

from smartcity.ingest import ingest_app
from smartcity.runtime import Context, http_function


@http_function
def create_app(context: Context):
    return ingest_app("bike-share-vehicles", context)
