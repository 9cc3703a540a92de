"""The trigger process's garbage collector: start-up's objects frozen, young objects collected less often."""

import gc
import weakref

import pytest

from smartcity.runtime import heap


@pytest.fixture
def restored_gc():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settling_freezes_what_lives_and_still_collects_cycles(restored_gc):
    survivor = [object() for _ in range(10)]
    heap.settle()
    assert gc.get_freeze_count() >= len(survivor)
    assert gc.get_threshold()[0] == heap.YOUNG_THRESHOLD

    class Node:
        pass

    node = Node()
    node.self = node  # a cycle made after settling: garbage the collector still finds
    made = weakref.ref(node)
    del node
    gc.collect()
    assert made() is None
