"""Where events come to rest: PostgreSQL/SQLite time series and reference tables, documents, latest state, archive.

Modules: :mod:`schema` (the tables, once), :mod:`migrate` (Alembic revisions), :mod:`engine` (SQLAlchemy on a
``Database``), :mod:`partitions` (daily partitions), :mod:`reference` (the city's
reference rows), :mod:`prepare` (all of that in one call), :mod:`envelope` (what the writers take), :mod:`tables`
(event -> row), :mod:`timeseries`, :mod:`latest_state`, :mod:`documents`, :mod:`archive` (the writers),
:mod:`backup`. The tables, collections and key schemes are described in ``smartcity/storage/README.md``.
"""
