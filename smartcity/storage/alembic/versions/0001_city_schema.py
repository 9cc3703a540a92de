"""The baseline, the schema that the old SQL migrations 0001-0310 made

Its tables: reference, stream, streaming aggregate, incident-case, forecast, anomaly-score and hotspot tables.

A database reaches this revision in one of two ways, never by running it: an empty database is built whole from
:mod:`smartcity.storage.schema` and stamped at the head revision (Alembic's recipe for building a database from
scratch), and a database that the old SQL files migrated to version 0310 already holds this schema and is stamped
here. So the body is empty, and it stays valid whatever later revisions change in ``schema.py``; each later
revision holds the operations that bring an existing database from its predecessor to it.

Revision ID: 0001
Revises:
"""

from smartcity.storage.migrate import MigrationError

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to run: see the module's docstring."""


def downgrade() -> None:
    raise MigrationError("0001 is the baseline: below it there is no schema; drop the database instead")
