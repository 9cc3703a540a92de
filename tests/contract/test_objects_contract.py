"""The object store contract, run against the local folder store and against S3."""

from __future__ import annotations

import pytest

from smartcity.backends.objects import ObjectStore, open_objects
from tests.contract.conftest import IMPLEMENTATIONS, open_implementation


@pytest.fixture(params=IMPLEMENTATIONS)
def store(request, tmp_path) -> ObjectStore:
    store = open_implementation(request, open_objects, f"file://{tmp_path}/objects", "objects_url")
    yield store
    store.close()


@pytest.fixture
def prefix(store, unique) -> str:
    prefix = f"contract/{unique}/"
    yield prefix
    for key in store.list(prefix):
        store.delete(key)


def test_put_get_exists_and_replace(store, prefix):
    key = f"{prefix}snapshots/2024-05-01/traffic.parquet"
    assert not store.exists(key)
    store.put(key, bytes(range(256)))
    assert store.exists(key)
    assert store.get(key) == bytes(range(256))
    store.put(key, b"second version", content_type="text/plain")
    assert store.get(key) == b"second version"


def test_an_absent_object_is_a_key_error(store, prefix):
    with pytest.raises(KeyError):
        store.get(f"{prefix}absent")


def test_list_by_prefix_is_sorted_and_complete(store, prefix):
    keys = [f"{prefix}b/2", f"{prefix}a", f"{prefix}b/1", f"{prefix}b/10/x", f"{prefix}bc"]
    for key in keys:
        store.put(key, key.encode())
    assert store.list(prefix) == sorted(keys)
    assert store.list(f"{prefix}b/") == sorted([f"{prefix}b/1", f"{prefix}b/10/x", f"{prefix}b/2"])
    assert store.list(f"{prefix}b/1") == [f"{prefix}b/1", f"{prefix}b/10/x"]
    assert store.list(f"{prefix}nothing/") == []


def test_delete_removes_and_tolerates_absent(store, prefix):
    store.put(f"{prefix}deep/folder/object", b"x")
    store.delete(f"{prefix}deep/folder/object")
    store.delete(f"{prefix}deep/folder/object")
    assert not store.exists(f"{prefix}deep/folder/object")
    assert store.list(prefix) == []


def test_empty_objects_are_objects(store, prefix):
    store.put(f"{prefix}empty", b"")
    assert store.exists(f"{prefix}empty")
    assert store.get(f"{prefix}empty") == b""


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "../escape", "a/.hidden", "a\\b", "trailing/"])
def test_keys_breaking_the_rules_are_refused(store, prefix, key):
    with pytest.raises(ValueError, match="object key"):
        store.put(key, b"x")
    assert store.list(prefix) == []
