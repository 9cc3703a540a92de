"""The embedded document store (``embedded:///path/to/documents.db``): JSON documents in SQLite, a table per collection.

Each collection is a table ``documents_<collection>`` of (``id``, ``body``) where ``body`` is the document as JSON
(datetimes as ``{"$date": "<ISO 8601>"}``). Filters of the supported subset are evaluated in Python with MongoDB's
meaning: a dotted path reaches into sub-documents and arrays, equality with an array field matches any element,
a comparison only matches values of the same type class (numbers with numbers, text with text, datetimes with
datetimes), and ``None`` equals a missing field. Lookups by ``_id`` use the table's key; other filters scan the
collection, which is what the demo's collection sizes allow.
"""

from __future__ import annotations

import operator
import sqlite3
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

import orjson

from smartcity.backends._url import local_path
from smartcity.backends.database.sqlite import SqliteDatabase
from smartcity.backends.documents.base import (
    Document,
    check_collection,
    check_document,
    check_filter,
    is_operator_condition,
)
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings

_MISSING = object()
_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}
_DELETE_CHUNK = 500  # ids per DELETE statement, under SQLite's limit of bound parameters


def utc_millis(moment: datetime) -> datetime:
    """A datetime as BSON keeps it: UTC (naive means UTC), to the millisecond."""
    moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _to_json(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$date": utc_millis(value).isoformat()}
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def encode(document: Mapping[str, Any]) -> str:
    return orjson.dumps(document, default=_to_json, option=orjson.OPT_PASSTHROUGH_DATETIME).decode()


def decode(body: str) -> Document:
    return _restore(orjson.loads(body))


def _restore(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and "$date" in value:
            return datetime.fromisoformat(value["$date"])
        return {name: _restore(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_restore(item) for item in value]
    return value


def _normalized(value: Any) -> Any:
    """A filter value as it would be stored, so that it compares with stored values."""
    if isinstance(value, datetime):
        return utc_millis(value)
    if isinstance(value, (list, tuple)):
        return [_normalized(item) for item in value]
    return value


def _type_class(value: Any) -> int:
    """MongoDB's cross-type order: null, numbers, text, documents, arrays, booleans, dates."""
    if value is None or value is _MISSING:
        return 0
    if isinstance(value, bool):
        return 5
    if isinstance(value, (int, float)):
        return 1
    if isinstance(value, str):
        return 2
    if isinstance(value, dict):
        return 3
    if isinstance(value, list):
        return 4
    return 6


def resolve(document: Any, path: str) -> list[Any]:
    """The values at a dotted path, reaching through arrays of sub-documents; empty when there are none."""
    values = [document]
    for part in path.split("."):
        found = []
        for value in values:
            if isinstance(value, dict) and part in value:
                found.append(value[part])
            elif isinstance(value, list):
                found += [item[part] for item in value if isinstance(item, dict) and part in item]
        values = found
    return values


def _candidates(document: Document, path: str) -> list[Any]:
    """What a condition on ``path`` is tested against: each value, and each element of an array value."""
    values = resolve(document, path)
    if not values:
        return [_MISSING]
    return values + [item for value in values if isinstance(value, list) for item in value]


def _equal(candidate: Any, wanted: Any) -> bool:
    if wanted is None:
        return candidate is None or candidate is _MISSING
    return _type_class(candidate) == _type_class(wanted) and candidate == wanted


def _holds(candidates: list[Any], operator_name: str, argument: Any) -> bool:
    if operator_name == "$ne":
        return not any(_equal(c, argument) for c in candidates)
    if operator_name == "$in":
        return any(_equal(c, wanted) for c in candidates for wanted in argument)
    compare = _COMPARISONS[operator_name]
    return any(
        c is not _MISSING and _type_class(c) == _type_class(argument) and compare(c, argument) for c in candidates
    )


def matches(document: Document, filter: Mapping[str, Any]) -> bool:
    for path, condition in filter.items():
        candidates = _candidates(document, path)
        if is_operator_condition(condition):
            if not all(_holds(candidates, name, _normalized(arg)) for name, arg in condition.items()):
                return False
        elif not any(_equal(c, _normalized(condition)) for c in candidates):
            return False
    return True


def _sort_key(path: str) -> Callable[[Document], tuple]:
    def key(document: Document) -> tuple:
        values = resolve(document, path)
        value = values[0] if values else None
        rank = _type_class(value)
        return (rank, value if rank in (1, 2, 5, 6) else orjson.dumps(value, default=_to_json))

    return key


def sort_documents(documents: list[Document], sort: Sequence[tuple[str, int]]) -> list[Document]:
    for path, direction in reversed(sort):  # stable sorts, least significant key first
        documents.sort(key=_sort_key(path), reverse=direction < 0)
    return documents


def _set_path(document: Document, path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        document = document.setdefault(part, {})
        if not isinstance(document, dict):
            raise ValueError(f"field {path!r}: {part!r} is not a sub-document")
    document[last] = value


class EmbeddedDocumentStore:
    def __init__(self, database: SqliteDatabase) -> None:
        self.database = database
        self._tables: set[str] = set()

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> EmbeddedDocumentStore:
        path = local_path(url, setting)
        try:
            return cls(SqliteDatabase(path))
        except (OSError, sqlite3.Error) as error:
            raise ConfigurationError(setting, f"cannot open the SQLite file {path}: {error}") from None

    def _run(self, collection: str, action: Callable[[str], Any]) -> Any:
        """Run ``action(table)``, creating the collection's table first if need be (another process may drop it)."""
        table = f'"documents_{check_collection(collection)}"'
        for attempt in (1, 2):
            if table not in self._tables:
                self.database.execute(f"CREATE TABLE IF NOT EXISTS {table} (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
                self._tables.add(table)
            try:
                return action(table)
            except sqlite3.OperationalError as error:
                if "no such table" not in str(error) or attempt == 2:
                    raise
                self._tables.discard(table)

    def insert_many(self, collection: str, documents: Sequence[Document]) -> int:
        rows = [{"id": check_document(d)["_id"], "body": encode(d)} for d in documents]
        return self._run(
            collection, lambda table: self.database.executemany(f"INSERT OR IGNORE INTO {table} (id, body) VALUES (:id, :body)", rows)
        )

    def upsert(self, collection: str, document: Document) -> None:
        row = {"id": check_document(document)["_id"], "body": encode(document)}
        self._run(collection, lambda table: self.database.execute(
            f"INSERT INTO {table} (id, body) VALUES (:id, :body) ON CONFLICT (id) DO UPDATE SET body = excluded.body", row
        ))

    def push(self, collection: str, document_id: str, field: str, item: Any, set_fields: Document | None = None) -> bool:
        if "_id" in (set_fields or {}) or field == "_id":
            raise ValueError("field '_id' cannot be changed")

        def append(table: str) -> bool:
            with self.database.transaction():
                rows = self.database.query(f"SELECT body FROM {table} WHERE id = :id", {"id": document_id})
                if not rows:
                    return False
                document = decode(rows[0]["body"])
                array = resolve(document, field)
                if array and not isinstance(array[0], list):
                    raise ValueError(f"field {field!r} of document {document_id!r} is not an array")
                _set_path(document, field, (array[0] if array else []) + [item])
                for path, value in (set_fields or {}).items():
                    _set_path(document, path, value)
                body = encode(check_document(document))
                self.database.execute(f"UPDATE {table} SET body = :body WHERE id = :id", {"id": document_id, "body": body})
                return True

        return self._run(collection, append)

    def get(self, collection: str, document_id: str) -> Document | None:
        rows = self._run(collection, lambda table: self.database.query(f"SELECT body FROM {table} WHERE id = :id", {"id": document_id}))
        return decode(rows[0]["body"]) if rows else None

    def _matching(self, collection: str, filter: Mapping[str, Any] | None) -> list[Document]:
        filter = check_filter(filter)
        wanted_id = filter.get("_id")
        if isinstance(wanted_id, str):
            document = self.get(collection, wanted_id)
            candidates = [document] if document else []
        else:
            rows = self._run(collection, lambda table: self.database.query(f"SELECT body FROM {table}"))
            candidates = [decode(row["body"]) for row in rows]
        return [document for document in candidates if matches(document, filter)]

    def find(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] = (),
        limit: int = 0,
    ) -> list[Document]:
        documents = sort_documents(self._matching(collection, filter), sort)
        return documents[:limit] if limit else documents

    def count(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        return len(self._matching(collection, filter))

    def delete_many(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        if not filter:
            return self._run(collection, lambda table: self.database.execute(f"DELETE FROM {table}"))
        ids = [document["_id"] for document in self._matching(collection, filter)]

        def delete(table: str) -> int:
            deleted = 0
            for start in range(0, len(ids), _DELETE_CHUNK):
                chunk = {f"id{n}": i for n, i in enumerate(ids[start:start + _DELETE_CHUNK])}
                deleted += self.database.execute(f"DELETE FROM {table} WHERE id IN ({', '.join(':' + k for k in chunk)})", chunk)
            return deleted

        return self._run(collection, delete)

    def collections(self) -> list[str]:
        rows = self.database.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'documents\\_%' ESCAPE '\\'")
        return sorted(row["name"].removeprefix("documents_") for row in rows)

    def drop_collection(self, collection: str) -> None:
        table = f'"documents_{check_collection(collection)}"'
        self.database.execute(f"DROP TABLE IF EXISTS {table}")
        self._tables.discard(table)

    def close(self) -> None:
        self.database.close()
