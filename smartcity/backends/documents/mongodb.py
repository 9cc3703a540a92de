"""The MongoDB document store (``mongodb://[user:password@]host:port/database[?options]``), on pymongo.

It speaks only what FerretDB 1.x serves too: plain CRUD commands, ``$push`` and ``$set`` updates, ``find`` with
sort and limit, and ``count``; no transactions, no aggregation beyond counting. The database is the URL's path.
With ``?tls=true`` the server's certificate and host name are verified, against ``SMARTCITY_TLS_CA_FILE`` when set
and the URL names no ``tlsCAFile``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

from pymongo import MongoClient
from pymongo.errors import BulkWriteError, PyMongoError, WriteError

from smartcity.backends._url import CONNECT_TIMEOUT_S, flag, query_options, tls_ca_file, unreachable
from smartcity.backends.documents.base import Document, check_collection, check_document, check_filter
from smartcity.errors import ConfigurationError
from smartcity.settings import Settings

DUPLICATE_KEY = 11000


class MongoDocumentStore:
    def __init__(self, client: MongoClient, database: str) -> None:
        self.client = client
        self.database = client[database]

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> MongoDocumentStore:
        parts = urlsplit(url)
        database = parts.path.strip("/")
        if not database:
            raise ConfigurationError(setting, f"{url!r} names no database; expected mongodb://host:port/database")
        timeout_ms = int(CONNECT_TIMEOUT_S * 1000)
        options = query_options(url)
        tls = {}
        if flag(options, "tls", setting) and "tlsCAFile" not in options and (ca_file := tls_ca_file(settings)):
            tls["tlsCAFile"] = ca_file
        try:
            client = MongoClient(url, serverSelectionTimeoutMS=timeout_ms, connectTimeoutMS=timeout_ms, tz_aware=True, **tls)
            client.admin.command("ping")
        except PyMongoError as error:
            raise unreachable(setting, "MongoDB", parts.hostname or url, error) from None
        return cls(client, database)

    def _collection(self, name: str):
        return self.database[check_collection(name)]

    def insert_many(self, collection: str, documents: Sequence[Document]) -> int:
        documents = [dict(check_document(document)) for document in documents]
        if not documents:
            return 0
        try:
            return len(self._collection(collection).insert_many(documents, ordered=False).inserted_ids)
        except BulkWriteError as error:
            others = [e for e in error.details["writeErrors"] if e["code"] != DUPLICATE_KEY]
            if others:
                raise
            return error.details["nInserted"]

    def upsert(self, collection: str, document: Document) -> None:
        check_document(document)
        self._collection(collection).replace_one({"_id": document["_id"]}, document, upsert=True)

    def push(self, collection: str, document_id: str, field: str, item: Any, set_fields: Document | None = None) -> bool:
        if "_id" in (set_fields or {}) or field == "_id":
            raise ValueError("field '_id' cannot be changed")
        update: dict[str, Any] = {"$push": {field: item}}
        if set_fields:
            update["$set"] = dict(set_fields)
        try:
            return self._collection(collection).update_one({"_id": document_id}, update).matched_count == 1
        except WriteError as error:
            raise ValueError(f"field {field!r} of document {document_id!r}: {error.details.get('errmsg', error)}") from None

    def get(self, collection: str, document_id: str) -> Document | None:
        return self._collection(collection).find_one({"_id": document_id})

    def find(
        self,
        collection: str,
        filter: Mapping[str, Any] | None = None,
        sort: Sequence[tuple[str, int]] = (),
        limit: int = 0,
    ) -> list[Document]:
        return list(self._collection(collection).find(check_filter(filter), sort=list(sort) or None, limit=limit))

    def count(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        # The ``count`` command rather than count_documents(), which needs an aggregation pipeline.
        return int(self.database.command("count", check_collection(collection), query=dict(check_filter(filter)))["n"])

    def delete_many(self, collection: str, filter: Mapping[str, Any] | None = None) -> int:
        return self._collection(collection).delete_many(dict(check_filter(filter))).deleted_count

    def collections(self) -> list[str]:
        return sorted(self.database.list_collection_names())

    def drop_collection(self, collection: str) -> None:
        self.database.drop_collection(check_collection(collection))

    def close(self) -> None:
        self.client.close()
