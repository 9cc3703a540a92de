"""Checksums of what a backup holds, so a restore is checked row for row, not only counted.

A table's checksum is the MD5 of its rows' MD5s in sorted order, so it does not depend on the order rows come back
in. PostgreSQL computes it itself (``md5(row::text)``, nothing leaves the server); SQLite's rows are hashed here,
each as the JSON list of its values. A collection's checksum is the SHA-256 of its documents' JSON lines with
sorted keys, in sorted order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from smartcity.backends.database import Database

POSTGRES_TABLE_CHECKSUM = (
    "SELECT md5(coalesce(string_agg(h, ',' ORDER BY h), '')) AS checksum "
    'FROM (SELECT md5(t::text) AS h FROM "{name}" t) rows'
)


def table_checksum(db: Database, name: str) -> str:
    if db.dialect == "postgresql":
        return db.query(POSTGRES_TABLE_CHECKSUM.format(name=name))[0]["checksum"]
    hashes = sorted(hashlib.md5(json.dumps(list(row.values()), default=str).encode()).hexdigest()
                    for row in db.query(f'SELECT * FROM "{name}"'))
    return hashlib.md5(",".join(hashes).encode()).hexdigest()


def table_checksums(db: Database, names: Iterable[str]) -> dict[str, str]:
    return {name: table_checksum(db, name) for name in names}


def documents_checksum(lines: Iterable[str]) -> str:
    """The checksum of a collection exported as JSON lines (``smartcity.backends.documents.embedded.encode``)."""
    canonical = sorted(json.dumps(json.loads(line), sort_keys=True) for line in lines)
    return hashlib.sha256("\n".join(canonical).encode()).hexdigest()


def checksum_differences(expected: dict[str, Any], found: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{name: (expected, found)}`` for every name whose value differs."""
    return {name: (value, found.get(name)) for name, value in expected.items() if found.get(name) != value}
