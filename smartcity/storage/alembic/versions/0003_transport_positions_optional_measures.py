"""transport_positions: speed, heading and occupancy_status may be null

Real GTFS-realtime feeds very often leave speed, bearing and occupancy out of their VehiclePositions; the
public-transport event takes them as optional since (:class:`smartcity.events.PublicTransportVehicle`), so its
table takes null in their columns. Batch mode: SQLite alters a column's nullability by copying the table.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLE = "transport_positions"
DOUBLE = sa.Double().with_variant(sa.REAL(), "sqlite")  # as schema.py declares it
COLUMNS = {"speed": DOUBLE, "heading": DOUBLE, "occupancy_status": sa.Text()}


def _set_nullable(nullable: bool) -> None:
    with op.batch_alter_table(TABLE) as batch:
        for name, type_ in COLUMNS.items():
            batch.alter_column(name, existing_type=type_, nullable=nullable)


def upgrade() -> None:
    _set_nullable(True)


def downgrade() -> None:
    """Refused by the database while a row holds a null in one of them."""
    _set_nullable(False)
