"""ingest-taxi-vtc: readings of the taxi-vtc stream (JSON or CSV, one or a batch) onto its topic.

Taxi and VTC trips' GPS fixes (personal data: vehicleId, driverId, location).
:mod:`smartcity.ingest` says what a reading may look like and what the answer says.
"""

from smartcity.ingest import ingest_app
from smartcity.runtime import Context, http_function


@http_function
def create_app(context: Context):
    return ingest_app("taxi-vtc", context)
