"""traffic_sensor_1h and traffic_segment_1h: the traffic windows' hourly rollup, filled from the windows there

``GET /v1/traffic/history`` reads a sensor's or segment's 1h and 1d buckets from these tables (twelve 5-minute
windows an hour fewer rows); the traffic job's sink and the history generator keep them from then on
(:mod:`smartcity.storage.traffic_hourly`). The upgrade creates them and fills them from every window already in
``traffic_sensor_5min`` / ``traffic_segment_5min``.

The tables are created as ``schema.py`` declares them now: change them only with a later revision that also
changes this one's tables into the new ones' shape.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from smartcity.storage.schema import metadata_for
from smartcity.storage.traffic_hourly import ROLLUPS, rollup_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    tables = metadata_for(connection.dialect.name).tables
    for window_table, (rollup, _) in ROLLUPS.items():
        tables[rollup].create(connection)
        op.execute(rollup_sql(connection.dialect.name, window_table, bounded=False))


def downgrade() -> None:
    for rollup, _ in ROLLUPS.values():
        op.drop_table(rollup)
