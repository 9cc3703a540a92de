"""RecentWindows: what serving holds in memory equals what it would read from the database afresh."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from models.recent import RecentWindows, rows_with_neighbours
from models.targets import load_context, load_panel, network_links, target_of
from smartcity.backends.database import open_database
from tests.models_storage import stored_history

STEPS = 288


def assert_fresh(db, held, until) -> None:
    """``held`` equals the same series read afresh from the database over the same steps."""
    fresh = load_panel(db, "segment-speed", held.start.to_pydatetime(), until, held.timezone, held.series_ids)
    order = [fresh.series_ids.index(series) for series in held.series_ids]
    assert held.n_times == fresh.n_times == STEPS
    np.testing.assert_array_equal(held.values, fresh.values[order])
    for name in fresh.exog:
        np.testing.assert_array_equal(held.exog[name], fresh.exog[name][order])
    assert (held.upstream, held.downstream) == network_links(target_of("segment-speed"), held.series_ids)


def test_advancing_joining_and_late_updates_match_a_fresh_read(tmp_path):
    settings, panel = stored_history(tmp_path, days=3, n_series=6)
    db = open_database(settings.database_url)
    recent = RecentWindows(db, "segment-speed", STEPS)
    end = (panel.start + pd.Timedelta(days=2)).to_pydatetime()
    first = recent.panel(panel.series_ids[:2], end)
    assert first.series_ids == load_context(db, "segment-speed", sorted(panel.series_ids[:2]), end, STEPS).series_ids
    assert_fresh(db, first, end)

    # the newest window of series 0 is rewritten late (inside the watermark): the next read sees it
    newest = end - timedelta(minutes=5)
    db.execute("UPDATE traffic_segment_5min SET mean_speed_kmh = 1234 WHERE segment_id = :s AND window_start = :t",
               {"s": panel.series_ids[0], "t": newest})
    later = end + timedelta(minutes=35)
    held = recent.panel(panel.series_ids[:2] + [panel.series_ids[5]], later)
    assert set(panel.series_ids[:2] + [panel.series_ids[5]]) <= set(held.series_ids)
    assert_fresh(db, held, later)
    assert held.values[0, held.index_of(pd.Timestamp(newest))] == 1234

    # a jump beyond the context reads everything again, for the entities asked for
    far = later + timedelta(days=2)
    jumped = recent.panel(panel.series_ids[:1], far)
    assert jumped.series_ids == load_context(db, "segment-speed", panel.series_ids[:1], far, STEPS).series_ids
    assert_fresh(db, jumped, far)
    db.close()


def test_rows_with_neighbours_keeps_the_links_a_forecast_reads(tmp_path):
    settings, panel = stored_history(tmp_path, days=2, n_series=6)
    db = open_database(settings.database_url)
    held = RecentWindows(db, "segment-speed", STEPS).panel(panel.series_ids, (panel.start + pd.Timedelta(days=1))
                                                           .to_pydatetime())
    row = next(r for r, links in enumerate(held.upstream) if links)
    rows = rows_with_neighbours(held, {held.series_ids[row]})
    assert row in rows and set(held.upstream[row]) <= set(rows)
    db.close()
