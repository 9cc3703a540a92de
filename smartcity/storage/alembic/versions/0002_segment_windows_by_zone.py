"""Index traffic_segment_5min by zone and window: a zone's traffic history reads its segments' windows

``GET /v1/traffic/history?zone=...`` selects ``traffic_segment_5min`` rows by ``zone_id`` over a time range; with
only the window-start index, PostgreSQL read every segment's windows of the range and dropped the other zones'.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEX, TABLE = "traffic_segment_5min_zone", "traffic_segment_5min"


def upgrade() -> None:
    op.create_index(INDEX, TABLE, ["zone_id", "window_start"])


def downgrade() -> None:
    op.drop_index(INDEX, table_name=TABLE)
