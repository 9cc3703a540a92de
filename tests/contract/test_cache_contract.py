"""The cache contract, run against the in-process memory cache and against Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from smartcity.backends.cache import Cache, open_cache
from tests.contract.conftest import IMPLEMENTATIONS, open_implementation


@pytest.fixture(params=IMPLEMENTATIONS)
def cache(request) -> Cache:
    cache = open_implementation(request, open_cache, "memory://contract", "cache_url")
    yield cache
    cache.close()


@pytest.fixture
def prefix(cache, unique) -> str:
    prefix = f"contract:{unique}:"
    yield prefix
    cache.delete(*cache.keys(prefix))


def test_set_get_and_absent_keys(cache, prefix):
    cache.set(f"{prefix}sensor:1", b'{"speed": 42}')
    assert cache.get(f"{prefix}sensor:1") == b'{"speed": 42}'
    assert cache.get(f"{prefix}sensor:absent") is None


def test_many_keys_in_one_call_keep_their_order(cache, prefix):
    cache.set_many({f"{prefix}b": b"2", f"{prefix}a": b"1", f"{prefix}bin": bytes(range(256))})
    assert cache.get_many([f"{prefix}a", f"{prefix}missing", f"{prefix}b", f"{prefix}bin"]) == [b"1", None, b"2", bytes(range(256))]
    assert cache.get_many([]) == []


def test_keys_expire_after_their_ttl(cache, prefix):
    cache.set(f"{prefix}short", b"x", ttl_s=0.3)
    cache.set_many({f"{prefix}short-many": b"y"}, ttl_s=0.3)
    cache.set(f"{prefix}long", b"z", ttl_s=60)
    assert cache.get(f"{prefix}short") == b"x"
    time.sleep(0.6)
    assert cache.get_many([f"{prefix}short", f"{prefix}short-many", f"{prefix}long"]) == [None, None, b"z"]
    assert cache.keys(prefix) == [f"{prefix}long"]


def test_setting_again_without_ttl_keeps_the_key(cache, prefix):
    cache.set(f"{prefix}k", b"1", ttl_s=0.3)
    cache.set(f"{prefix}k", b"2")
    time.sleep(0.5)
    assert cache.get(f"{prefix}k") == b"2"


def test_delete_counts_existing_keys(cache, prefix):
    cache.set_many({f"{prefix}a": b"1", f"{prefix}b": b"2"})
    assert cache.delete(f"{prefix}a", f"{prefix}b", f"{prefix}never") == 2
    assert cache.delete() == 0
    assert cache.get(f"{prefix}a") is None


def test_keys_by_prefix_sorted_with_glob_characters_taken_literally(cache, prefix):
    cache.set_many({f"{prefix}x*[1]": b"1", f"{prefix}x?2": b"2", f"{prefix}y": b"3", f"{prefix}xa": b"4"})
    assert cache.keys(f"{prefix}x*") == [f"{prefix}x*[1]"]
    assert cache.keys(f"{prefix}x") == sorted([f"{prefix}x*[1]", f"{prefix}x?2", f"{prefix}xa"])


def test_incr_counts_from_zero(cache, prefix):
    assert cache.incr(f"{prefix}events") == 1
    assert cache.incr(f"{prefix}events", 10) == 11
    assert cache.get(f"{prefix}events") == b"11"
    cache.set(f"{prefix}text", b"not a number")
    with pytest.raises(ValueError, match="not an integer"):
        cache.incr(f"{prefix}text")


def test_incr_refuses_an_empty_value(cache, prefix):
    cache.set(f"{prefix}empty", b"")
    with pytest.raises(ValueError, match="not an integer"):
        cache.incr(f"{prefix}empty")
    assert cache.get(f"{prefix}empty") == b""


def test_a_ttl_must_be_positive(cache, prefix):
    for bad in (0, -1):
        with pytest.raises(ValueError, match="ttl_s"):
            cache.set(f"{prefix}k", b"v", ttl_s=bad)
    assert cache.get(f"{prefix}k") is None


def test_an_index_keeps_its_members_once_in_byte_order_and_pages_after_a_member(cache, prefix):
    index = f"{prefix}index"
    cache.index_add(index, ["b", "a", "é", "a:1", "c"])
    cache.index_add(index, ["b", "d"])  # again: kept once
    cache.index_add(index, [])
    assert cache.index_range(index, None, 10) == ["a", "a:1", "b", "c", "d", "é"]
    assert cache.index_range(index, None, 2) == ["a", "a:1"]
    assert cache.index_range(index, "a:1", 3) == ["b", "c", "d"]
    assert cache.index_range(index, "bb", 10) == ["c", "d", "é"]  # after a value that is not a member
    assert cache.index_range(index, "é", 10) == []
    assert cache.index_remove(index, "c", "never") == 1
    assert cache.index_remove(index) == 0
    assert cache.index_range(index, "b", 10) == ["d", "é"]
    assert cache.index_range(f"{prefix}absent", None, 10) == []
    assert cache.keys(prefix) == [index]  # an index is a key: listed, and deleted like one
    assert cache.delete(index) == 1
    assert cache.index_range(index, None, 10) == []


def test_reads_from_coroutines_give_each_caller_its_values(cache, prefix):
    big = bytes(range(256)) * 1000  # longer than one socket read
    cache.set_many({f"{prefix}a": b"1", f"{prefix}b": b"", f"{prefix}big": big})
    asks = [[f"{prefix}a"], [f"{prefix}missing", f"{prefix}b"], [], [f"{prefix}big", f"{prefix}a"], [f"{prefix}a"]]

    async def read_at_once() -> list[list[bytes | None]]:  # one turn of the loop: Redis batches them
        return list(await asyncio.gather(*(cache.get_many_async(keys) for keys in asks)))

    expected = [[b"1"], [None, b""], [], [big, b"1"], [b"1"]]
    assert asyncio.run(read_at_once()) == expected
    assert asyncio.run(read_at_once()) == expected  # another event loop: the reads follow it
