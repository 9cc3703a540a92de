"""List routes page the latest states through each stream's index, on the memory cache and on Redis: every entity
once, in id order, expired ones dropped, and never a scan of the cache's keys (no SCAN/KEYS sent to Redis)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from smartcity.api.pagination import Page, page_in_key_order
from smartcity.backends.cache import open_cache
from smartcity.storage.latest_state import LatestState, index_key, latest_key
from tests.contract.conftest import IMPLEMENTATIONS, open_implementation
from tests.storage_samples import MOMENT, sample_events, stored

STREAM = "traffic-sensors"


@pytest.fixture(params=IMPLEMENTATIONS)
def cache(request):
    cache = open_implementation(request, open_cache, "memory://latest-paging", "cache_url")
    yield cache
    cache.close()


@pytest.fixture
def sensors(cache, unique):
    """1,050 sensor states under ids of this test's own (other tests' sensors may share the stream's index)."""
    template = sample_events()[STREAM]
    events = [stored(STREAM, template.model_copy(update={"id": f"urn:test:{unique}:{n:05d}"})) for n in range(1050)]
    yield [event.entity_id for event in events], events
    ids = [event.entity_id for event in events]
    cache.delete(*[latest_key(STREAM, entity_id) for entity_id in ids])
    cache.index_remove(index_key(STREAM), *ids)


class CommandLog:
    """The commands a Redis client sends (redis-py's execute_command), to check that none is a scan."""

    def __init__(self, client) -> None:
        self.names: list[str] = []
        send = client.execute_command

        def logged(*args, **options):
            self.names.append(str(args[0]).upper())
            return send(*args, **options)

        client.execute_command = logged


def test_pages_hold_every_entity_once_in_id_order_without_scanning_keys(cache, sensors, unique, monkeypatch):
    ids, events = sensors
    latest = LatestState(cache, ttl_s=60)
    assert latest.write(events) == len(events)
    monkeypatch.setattr(cache, "keys", lambda prefix: pytest.fail(f"listed keys by prefix {prefix!r}"))
    commands = CommandLog(cache.client) if hasattr(cache, "client") else None

    mine = f"urn:test:{unique}:"
    seen, cursor, pages = [], None, 0
    while True:  # the route's paging, over this test's sensors only (from just before the first of them)
        page = page_in_key_order(Page[dict], lambda after: latest.iter_states(STREAM, after or mine, chunk=64),
                                 lambda state: state["entity_id"], 100, cursor, {})
        seen += [state["entity_id"] for state in page.items if state["entity_id"].startswith(mine)]
        pages += 1
        if page.next_cursor is None or not page.items[-1]["entity_id"].startswith(mine):
            break
        cursor = page.next_cursor
    assert seen == ids  # each once, in id order
    assert pages >= 11
    if commands is not None:
        assert {"SCAN", "KEYS"}.isdisjoint(commands.names), sorted(set(commands.names))
        assert "ZRANGEBYLEX" in commands.names


def test_an_expired_state_leaves_the_listing_and_its_index(cache, sensors):
    ids, events = sensors
    latest = LatestState(cache, ttl_s=0.3)
    latest.write(events[:3])
    later = events[1].event.model_copy(update={"dateObserved": MOMENT + timedelta(seconds=1)})
    LatestState(cache, ttl_s=60).write([stored(STREAM, later)])  # this one lives on
    time.sleep(0.6)
    states = list(latest.iter_states(STREAM, ids[0][:-1]))
    assert [state["entity_id"] for state in states if state["entity_id"] in ids] == [ids[1]]
    assert cache.index_range(index_key(STREAM), ids[0][:-1], 3)[:1] == [ids[1]]  # the expired two were removed
