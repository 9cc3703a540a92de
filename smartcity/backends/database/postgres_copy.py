"""Rows into a PostgreSQL table by binary ``COPY``: values go in the wire format, with no text to format or parse.

Text ``COPY`` formats every value as text on the client (a timestamp costs most) and the server parses it back;
binary sends each value as the server stores it, which costs the client about a sixth as much per row of a
stream table. Binary needs each column's exact type, read from the catalogue once per table and columns.
"""

from __future__ import annotations

from typing import Any, Sequence

import psycopg

_TYPES = """
SELECT format_type(a.atttypid, a.atttypmod) AS type
FROM unnest(%(columns)s::text[]) WITH ORDINALITY AS c(name, position)
LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(%(table)s) AND a.attname = c.name AND NOT a.attisdropped
ORDER BY c.position
"""

_types: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}


def column_types(connection: psycopg.Connection, table: str, columns: Sequence[str]) -> list[str]:
    """The type of each of ``columns`` of ``table`` (``timestamp with time zone``), remembered per database."""
    key = (connection.info.dsn, table, tuple(columns))
    if key not in _types:
        rows = connection.execute(_TYPES, {"columns": list(columns), "table": table}).fetchall()
        types = [row["type"] if isinstance(row, dict) else row[0] for row in rows]
        if None in types:
            missing = [name for name, kind in zip(columns, types) if kind is None]
            raise psycopg.errors.UndefinedColumn(f"table {table} has no column(s) {missing}")
        _types[key] = types
    return _types[key]


def copy_rows(connection: psycopg.Connection, target: str, types: Sequence[str], columns: Sequence[str],
              rows: Sequence[Sequence[Any]]) -> None:
    """``COPY target (columns)`` of ``rows`` in binary, the columns being of ``types``."""
    with connection.cursor().copy(f"COPY {target} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)
