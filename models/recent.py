"""The recent windows of a target, kept in memory between batches: what serving reads instead of the database.

A forecast reads days of context (XGBoost's same-time-last-week feature) for a segment and its neighbours. Read
from the database on every closed window, that costs tens of milliseconds per segment, most of it rows coming
back from the store. :class:`RecentWindows` reads the context of an entity once (with its road-network
neighbours, :func:`models.targets.load_context`), then on each batch only the newest steps of every entity it
holds: the windows that closed since, and the :data:`REREAD_STEPS` before them, so that a window the streaming
job updated late (inside its watermark) is read again. The panel it returns always ends at the requested time.

Triggers deliver a road segment's windows to the same function replica (the records are keyed by segment), so
a replica holds the context of its own segments only; a replica that starts reads them again.
"""

from __future__ import annotations

import threading
from datetime import datetime

import numpy as np
import pandas as pd

from models.panel import Panel
from models.targets import STEP, load_context, load_panel, network_links, target_of

REREAD_STEPS = 3


class RecentWindows:
    """The last ``steps`` grid steps of the entities of ``target`` seen so far, with their neighbours."""

    def __init__(self, database, target: str, steps: int) -> None:
        self.database, self.target, self.steps = database, target, steps
        self._panel: Panel | None = None
        self._lock = threading.Lock()

    def panel(self, entities: list[str], until: datetime) -> Panel:
        """The panel of every held entity (``entities`` included) over the ``steps`` before ``until``.

        Held entities advance (a few steps read); new ones are read whole and joined; a jump further than the
        context (or back before it) reads everything again."""
        with self._lock:
            held = self._panel
            end = None if held is None else held.start + held.n_times * pd.Timedelta(STEP)
            if held is None or not (-self.steps < (pd.Timestamp(until) - end) / pd.Timedelta(STEP) <= self.steps):
                held = load_context(self.database, self.target, sorted(set(entities)), until, self.steps)
            else:
                held = self._advanced(held, end, pd.Timestamp(until))
            missing = sorted(set(entities) - set(held.series_ids))
            if missing:
                held = self._joined(held, load_context(self.database, self.target, missing, until, self.steps))
            self._panel = held
            return held

    def _joined(self, held: Panel, new: Panel) -> Panel:
        """``held`` with the series of ``new`` (same grid) that it lacks, and the network links of them all."""
        rows = [row for row, series in enumerate(new.series_ids) if series not in set(held.series_ids)]
        ids = held.series_ids + [new.series_ids[row] for row in rows]
        stack = lambda a, b: np.concatenate([a, b[rows]], axis=0)
        exog = {name: stack(held.exog[name], new.exog[name]) for name in held.exog}
        panel = Panel(ids, held.start, held.step_min, stack(held.values, new.values), held.timezone, exog)
        panel.upstream, panel.downstream = network_links(target_of(self.target), ids)
        return panel

    def _advanced(self, held: Panel, end: pd.Timestamp, until: pd.Timestamp) -> Panel:
        """``held`` moved on to ``until``: its newest steps read again, older ones dropped, newer ones added."""
        since = min(end, until) - REREAD_STEPS * pd.Timedelta(STEP)
        fresh = load_panel(self.database, self.target, since.to_pydatetime(), until.to_pydatetime(),
                           held.timezone, held.series_ids)
        order = [fresh.series_ids.index(series) for series in held.series_ids]
        start = until - self.steps * pd.Timedelta(STEP)
        offset = int((since - held.start) // pd.Timedelta(STEP))  # where the fresh steps begin in held's grid

        def joined(old: np.ndarray, new: np.ndarray) -> np.ndarray:
            both = np.concatenate([old[:, :offset], new[order]], axis=1)
            begin = int((start - held.start) // pd.Timedelta(STEP))
            if begin < 0:  # a panel younger than ``steps``: pad its past with NaN
                both = np.concatenate([np.full((both.shape[0], -begin), np.nan), both], axis=1)
                begin = 0
            return both[:, begin:begin + self.steps]

        exog = {name: joined(held.exog[name], fresh.exog[name]) for name in held.exog}
        return Panel(held.series_ids, start, held.step_min, joined(held.values, fresh.values), held.timezone, exog,
                     held.upstream, held.downstream)


def rows_with_neighbours(panel: Panel, entities: set[str]) -> list[int]:
    """The rows of ``entities`` and of their upstream and downstream neighbours in ``panel``."""
    rows = {row for row, series in enumerate(panel.series_ids) if series in entities}
    for links in (panel.upstream, panel.downstream):
        if links:
            rows |= {neighbour for row in list(rows) for neighbour in links[row]}
    return sorted(rows)
