"""The incidents stream: road incidents reported and cleared."""

from smartcity.events.incidents import Alert
from smartcity.streams import Stream

STREAM = Stream(
    topic="incidents",
    ce_type="city.incident.reported.v1",
    model=Alert,
    key_field="id",
    description="Road incidents reported and cleared",
    table="incident_reports",
    indexes=("entity_id", "zone_id", "segment_id"),
)
