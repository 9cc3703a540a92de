"""The document store contract, run against the embedded SQLite store and against MongoDB (FerretDB)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from smartcity.backends.documents import DocumentStore, open_documents
from tests.contract.conftest import IMPLEMENTATIONS, open_implementation

NOON = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request, tmp_path) -> DocumentStore:
    store = open_implementation(request, open_documents, f"embedded:///{tmp_path}/documents.db", "documents_url")
    yield store
    store.close()


@pytest.fixture
def collection(store, unique) -> str:
    name = f"contract_{unique}"
    yield name
    store.drop_collection(name)


def incidents() -> list[dict]:
    return [
        {"_id": "i1", "kind": "accident", "severity": 3, "zone": {"name": "north"}, "tags": ["lane", "night"], "at": NOON},
        {"_id": "i2", "kind": "roadworks", "severity": 1, "zone": {"name": "south"}, "tags": ["lane"], "at": NOON + timedelta(hours=1)},
        {"_id": "i3", "kind": "accident", "severity": 5, "zone": {"name": "south"}, "tags": [], "at": NOON + timedelta(hours=2)},
        {"_id": "i4", "kind": "closure", "severity": 2, "zone": {"name": "east"}, "tags": ["event"], "note": None},
    ]


def ids(documents) -> list[str]:
    return [document["_id"] for document in documents]


def test_insert_many_skips_existing_ids(store, collection):
    assert store.insert_many(collection, incidents()) == 4
    again = incidents()[:2] + [{"_id": "i5", "kind": "closure", "severity": 1}]
    assert store.insert_many(collection, again) == 1
    assert store.count(collection) == 5
    assert store.insert_many(collection, []) == 0


def test_get_returns_the_document_with_utc_millisecond_datetimes(store, collection):
    store.insert_many(collection, incidents())
    document = store.get(collection, "i1")
    assert document == {**incidents()[0], "at": NOON.replace(microsecond=123000)}
    assert document["at"].utcoffset() == timedelta(0)
    assert store.get(collection, "absent") is None


def test_filters_of_the_supported_subset(store, collection):
    store.insert_many(collection, incidents())
    assert ids(store.find(collection, {"kind": "accident"}, sort=[("_id", 1)])) == ["i1", "i3"]
    assert ids(store.find(collection, {"zone.name": "south"}, sort=[("_id", 1)])) == ["i2", "i3"]
    assert ids(store.find(collection, {"tags": "lane"}, sort=[("_id", 1)])) == ["i1", "i2"]
    assert ids(store.find(collection, {"severity": {"$gte": 2, "$lt": 5}}, sort=[("_id", 1)])) == ["i1", "i4"]
    assert ids(store.find(collection, {"severity": {"$gt": 2}, "kind": {"$ne": "closure"}}, sort=[("_id", 1)])) == ["i1", "i3"]
    assert ids(store.find(collection, {"kind": {"$in": ["closure", "roadworks"]}}, sort=[("_id", 1)])) == ["i2", "i4"]
    assert ids(store.find(collection, {"at": {"$gte": NOON + timedelta(minutes=30)}}, sort=[("_id", 1)])) == ["i2", "i3"]
    assert ids(store.find(collection, {"note": None}, sort=[("_id", 1)])) == ["i1", "i2", "i3", "i4"]
    assert ids(store.find(collection, {"_id": "i2"})) == ["i2"]
    assert store.count(collection, {"kind": "accident", "severity": {"$lte": 3}}) == 1


def test_sort_by_several_fields_and_limit(store, collection):
    store.insert_many(collection, incidents())
    assert ids(store.find(collection, sort=[("kind", 1), ("severity", -1)])) == ["i3", "i1", "i4", "i2"]
    assert ids(store.find(collection, sort=[("severity", -1)], limit=2)) == ["i3", "i1"]


def test_upsert_inserts_then_replaces(store, collection):
    store.upsert(collection, {"_id": "bus-12", "line": "12", "delay_s": 30})
    store.upsert(collection, {"_id": "bus-12", "line": "12", "stop": "Gare"})
    assert store.get(collection, "bus-12") == {"_id": "bus-12", "line": "12", "stop": "Gare"}
    assert store.count(collection) == 1


def test_push_appends_and_sets(store, collection):
    store.upsert(collection, {"_id": "trip-1", "points": [], "status": {"state": "open"}})
    assert store.push(collection, "trip-1", "points", {"lat": 48.85, "lon": 2.35})
    assert store.push(collection, "trip-1", "points", {"lat": 48.86, "lon": 2.36}, set_fields={"status.state": "moving", "n": 2})
    assert store.get(collection, "trip-1") == {
        "_id": "trip-1",
        "points": [{"lat": 48.85, "lon": 2.35}, {"lat": 48.86, "lon": 2.36}],
        "status": {"state": "moving"},
        "n": 2,
    }
    assert store.push(collection, "trip-2", "points", 1) is False
    assert store.push(collection, "trip-1", "events", "started")  # a missing array is created
    assert store.get(collection, "trip-1")["events"] == ["started"]


def test_delete_many_with_and_without_filter(store, collection):
    store.insert_many(collection, incidents())
    assert store.delete_many(collection, {"kind": "accident"}) == 2
    assert ids(store.find(collection, sort=[("_id", 1)])) == ["i2", "i4"]
    assert store.delete_many(collection) == 2
    assert store.count(collection) == 0


def test_bad_documents_and_filters_are_refused_naming_the_field(store, collection):
    with pytest.raises(ValueError, match="'_id'"):
        store.insert_many(collection, [{"kind": "no id"}])
    with pytest.raises(ValueError, match="'zone.na.me'"):
        store.upsert(collection, {"_id": "x", "zone": {"na.me": 1}})
    with pytest.raises(ValueError, match=r"'\$regex' is not supported"):
        store.find(collection, {"kind": {"$regex": "^acc"}})
    with pytest.raises(ValueError, match=r"'\$or' is not supported"):
        store.count(collection, {"$or": [{"kind": "a"}]})
    assert store.count(collection) == 0


def test_an_unknown_collection_is_empty(store, collection):
    assert store.find(collection) == []
    assert store.count(collection, {"kind": "x"}) == 0
    assert store.delete_many(collection, {"kind": "x"}) == 0


def test_collections_lists_those_that_exist_and_not_dropped_ones(store, collection):
    assert collection not in store.collections()
    store.insert_many(collection, incidents())
    assert collection in store.collections()
    assert store.collections() == sorted(store.collections())
    store.drop_collection(collection)
    assert collection not in store.collections()
