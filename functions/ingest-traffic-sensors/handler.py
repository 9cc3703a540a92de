"""ingest-traffic-sensors: readings of the traffic-sensors stream (JSON or CSV, one or a batch) onto its topic.

Per-lane induction-loop flow, occupancy and speed every interval.
:mod:`smartcity.ingest` says what a reading may look like and what the answer says.
"""

from smartcity.ingest import ingest_app
from smartcity.runtime import Context, http_function


@http_function
def create_app(context: Context):
    return ingest_app("traffic-sensors", context)
