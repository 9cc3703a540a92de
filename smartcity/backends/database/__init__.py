"""Relational store backends: ``postgresql://`` (psycopg 3) and ``sqlite:///`` (embedded)."""

from smartcity.backends import load_backend
from smartcity.backends.database.base import Database

SCHEMES = {
    "postgresql": "smartcity.backends.database.postgres:PostgresDatabase",
    "sqlite": "smartcity.backends.database.sqlite:SqliteDatabase",
}


def open_database(url: str, setting: str = "SMARTCITY_DATABASE_URL", **options) -> Database:
    """Open the backend that the URL's scheme names; ``options`` go to its ``from_url`` (e.g. ``settings=``)."""
    return load_backend(setting, url, SCHEMES, **options)


__all__ = ["Database", "SCHEMES", "open_database"]
