"""The garbage collector of a long-running trigger process, tuned for the many short-lived objects of its events.

After start-up the heap holds what lives as long as the process (modules, pydantic schemas, the city, the
loaded functions): hundreds of thousands of objects, which every full collection of CPython's collector walks. A
trigger allocates dozens of container objects per event (records, headers, CloudEvents, models, rows), so
collections came often, and they were the biggest cost per event: 33 of 103-111 us of CPU per traffic event in
``bench/profile_ingest.py``. :func:`settle` freezes what start-up made (``gc.freeze``: never walked again) and lets
the youngest generation grow to :data:`YOUNG_THRESHOLD` objects before it is collected (the default is 700);
the same profile then spends about 0.2 us per event collecting. Cycles are still collected, only less often.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def settle() -> None:
    """Call once start-up is done (functions loaded), before the event loop starts."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
