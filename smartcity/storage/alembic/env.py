"""The Alembic environment of the platform's schema, run by :mod:`smartcity.storage.migrate` (no alembic.ini).

The migrator hands over an open connection, already in the transaction (and, on PostgreSQL, under the advisory
lock) in which every revision runs: the whole upgrade applies or none of it. SQLite alters tables in batch mode
(copy and move), which is how it can change a column at all.
"""

from alembic import context

from smartcity.storage.migrate import MigrationError, include_name
from smartcity.storage.schema import metadata_for

connection = context.config.attributes.get("connection")
if connection is None or context.is_offline_mode():
    raise MigrationError("the schema's migrations run through `smartcity db migrate` (an open connection), not offline")

context.configure(
    connection=connection,
    target_metadata=metadata_for(connection.dialect.name),
    render_as_batch=connection.dialect.name == "sqlite",
    transactional_ddl=True,
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
