"""What the stores need before the first event, in one call for the demo and the local stack."""

from __future__ import annotations

from smartcity.backends.database import open_database
from smartcity.privacy import ensure_pseudonym_key
from smartcity.settings import Settings
from smartcity.storage.migrate import Revision, migrate
from smartcity.storage.reference import load_reference


def prepare_storage(settings: Settings) -> list[Revision]:
    """Migrate the database, load the city's reference data and make the pseudonym key if it is missing.

    Safe to run at every start: a second run applies no revision and rewrites the same reference rows.
    Returns the schema revisions applied.
    """
    ensure_pseudonym_key(settings)
    db = open_database(settings.database_url, settings=settings)
    try:
        applied = migrate(db, partitions_days_ahead=settings.partitions_days_ahead)
        load_reference(db)
    finally:
        db.close()
    return applied
