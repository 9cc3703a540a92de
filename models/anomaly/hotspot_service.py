"""Hotspot runs: the last hour's anomalies and active incidents, clustered (:mod:`models.anomaly.hotspots`),
stored in ``traffic_hotspots``, and the changes as :class:`~smartcity.events.derived.TrafficHotspot` events.

:class:`HotspotService` is what the ``cluster-hotspots`` function holds. Its clock is the windows it is given
(their newest end: replays and generated history cluster the same as live), and it runs at most every
``interval_s`` seconds of that clock. A run reads

- the windows the anomaly detectors flagged (``anomaly_scores``) in the last :data:`LOOKBACK`, each at its
  window, its id the alert it raised;
- the incidents reported on ``incidents`` (``incident_reports``, the time-series store of every report) whose
  latest report says active and that were valid in the last :data:`LOOKBACK`: each at the last moment it was
  known active (now for an ongoing one), since its start; the alerts of a detector (the streaming job's, this
  package's) count as anomalies, the others as incidents. An alert known both ways is one point.

Then, in one transaction, the hotspots found are upserted ``active`` and those no longer found are marked
inactive. The run returns an ``active`` event for each new or changed hotspot (other members) and a ``cleared``
one for each that is gone: the function publishes them on ``hotspots``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from models.anomaly.hotspots import (
    DEFAULT_MIN_POINTS, DEFAULT_RADIUS_M, DEFAULT_WINDOW_S, Hotspot, HotspotPoint, find_hotspots,
)
from models.anomaly.serving import ALERT_SOURCE
from models.targets import DETECTED_ALERT_SOURCE, _utc
from smartcity.backends.database import Database
from smartcity.events import city
from smartcity.events.derived import TrafficHotspot
from smartcity.storage.upsert import upsert

LOOKBACK = timedelta(hours=1)
# an incident reported once and active since: its reports are read this far back
REPORTS_LOOKBACK = timedelta(days=1)
DETECTOR_SOURCES = (ALERT_SOURCE, DETECTED_ALERT_SOURCE)


@dataclass(frozen=True)
class HotspotOptions:
    interval_s: float = 60.0
    radius_m: float = DEFAULT_RADIUS_M
    window_s: float = DEFAULT_WINDOW_S
    min_points: int = DEFAULT_MIN_POINTS


class HotspotService:
    """Clusters at most every ``options.interval_s`` seconds of window time."""

    def __init__(self, database: Database, options: HotspotOptions = HotspotOptions()) -> None:
        self.database = database
        self.options = options
        self.last_run: datetime | None = None

    def maybe_run(self, now: datetime) -> list[TrafficHotspot]:
        """Run if ``interval_s`` has passed since the last run (by the windows' clock); the events to publish."""
        if self.last_run is not None and (now - self.last_run).total_seconds() < self.options.interval_s:
            return []
        self.last_run = now
        return self.run(now)

    def run(self, now: datetime) -> list[TrafficHotspot]:
        options = self.options
        hotspots = find_hotspots(recent_points(self.database, now), options.radius_m, options.window_s,
                                 options.min_points)
        return store_hotspots(self.database, hotspots, now)


def recent_points(database: Database, now: datetime) -> list[HotspotPoint]:
    """The flagged anomalies and active incidents of the last :data:`LOOKBACK` before ``now``."""
    since = now - LOOKBACK
    anomalies = database.query(
        "SELECT alert_id, lon, lat, window_start, window_end FROM anomaly_scores WHERE flagged "
        "AND window_start >= :since AND window_start < :now ORDER BY window_start",
        {"since": _utc(since), "now": _utc(now)})
    points = [HotspotPoint(row["alert_id"], "anomaly", row["lon"], row["lat"], _utc(row["window_end"]),
                           _utc(row["window_start"])) for row in anomalies]
    reports = database.query(
        "SELECT entity_id, observed_at, status, lon, lat, valid_from, valid_to, alert_source FROM incident_reports "
        "WHERE observed_at >= :first AND observed_at <= :now ORDER BY observed_at",
        {"first": _utc(now - REPORTS_LOOKBACK), "now": _utc(now)})
    latest = {row["entity_id"]: row for row in reports}  # ordered by time: the last report wins
    for incident, row in latest.items():
        valid_to = _utc(row["valid_to"]) if row["valid_to"] is not None else None
        if row["status"] != "active" or (valid_to is not None and valid_to < since) or _utc(row["valid_from"]) > now:
            continue
        kind = "anomaly" if row["alert_source"] in DETECTOR_SOURCES else "incident"
        points.append(HotspotPoint(incident, kind, row["lon"], row["lat"], min(now, valid_to or now),
                                   _utc(row["valid_from"])))
    return points


HOTSPOT_KEY = ("id",)


def store_hotspots(database: Database, hotspots: list[Hotspot], now: datetime) -> list[TrafficHotspot]:
    """Make ``hotspots`` the active ones; the events of what changed (new, other members, gone)."""
    with database.transaction():
        active = {row["id"]: row for row in database.query("SELECT * FROM traffic_hotspots WHERE active")}
        current = [hotspot_event(hotspot, now) for hotspot in hotspots]
        changed = [event for event in current
                   if event.id not in active or json.loads(active[event.id]["members"]) != event.members]
        gone = [row for hotspot_id, row in active.items() if hotspot_id not in {event.id for event in current}]
        upsert(database, "traffic_hotspots", [hotspot_row(event) for event in current], key=HOTSPOT_KEY)
        if gone:
            database.executemany("UPDATE traffic_hotspots SET active = :no, computed_at = :now WHERE id = :id",
                                 [{"no": False, "now": _utc(now), "id": row["id"]} for row in gone])
    return changed + [cleared_event(row, now) for row in gone]


def hotspot_event(hotspot: Hotspot, now: datetime) -> TrafficHotspot:
    return TrafficHotspot(
        id=hotspot.id, status="active", computed_at=now, lon=hotspot.lon, lat=hotspot.lat,
        zone=city().zone_of(hotspot.lon, hotspot.lat), extent=hotspot.extent, members=list(hotspot.members),
        anomalies=hotspot.anomalies, incidents=hotspot.incidents, size=hotspot.size, since=hotspot.since,
        last_seen=hotspot.last_seen)


def hotspot_row(event: TrafficHotspot) -> dict[str, Any]:
    return {"id": event.id, "active": event.status == "active", "computed_at": _utc(event.computed_at),
            "lon": event.lon, "lat": event.lat, "zone_id": event.zone, "extent": json.dumps(event.extent),
            "members": json.dumps(event.members), "anomalies": event.anomalies, "incidents": event.incidents,
            "size": event.size, "since": _utc(event.since), "last_seen": _utc(event.last_seen)}


def cleared_event(row: dict[str, Any], now: datetime) -> TrafficHotspot:
    """The last state of a stored hotspot that is gone, as a ``cleared`` event."""
    return TrafficHotspot(
        id=row["id"], status="cleared", computed_at=now, lon=row["lon"], lat=row["lat"], zone=row["zone_id"],
        extent=json.loads(row["extent"]), members=json.loads(row["members"]), anomalies=row["anomalies"],
        incidents=row["incidents"], size=row["size"], since=_utc(row["since"]), last_seen=_utc(row["last_seen"]))


def event_id(event: TrafficHotspot) -> str:
    """The CloudEvent id of a hotspot event: fixed by hotspot, status and members (a re-run publishes the same)."""
    members = hashlib.sha256("\n".join(event.members).encode()).hexdigest()[:12]
    return f"{event.id}|{event.status}|{members}"
