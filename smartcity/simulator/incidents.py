"""incidents: accidents and lane closures, injected into the SUMO simulation and reported as Alerts.

Incidents come from the command line (``--incident kind=accident,at=08:10,minutes=20,lane=<SUMO lane>``) and at
random (``incidents_per_day``, on lanes that carry a sensor). An accident puts a wrecked car near the downstream
end of the lane, a closure forbids the lane; either way the queue grows upstream, where the lane's sensor is.
Each incident gives an ``active`` Alert when it starts and a ``cleared`` one when it ends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from smartcity.events import Alert
from smartcity.events.common import Location, ngsi_id
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.sumo import DETECTOR_PERIOD_S

KINDS = {"accident": ("carAccident", "high"), "closure": ("roadClosed", "medium")}
WRECK_FROM_END_M = 10.0


@dataclass(frozen=True)
class IncidentPlan:
    """An incident to inject: ``kind`` (accident or closure) on ``lane`` (None: a random sensor lane)."""

    kind: str
    start: datetime
    minutes: float
    lane: str | None = None


def parse_incident(text: str, start: datetime) -> IncidentPlan:
    """``kind=accident,at=08:10|+15m,minutes=20,lane=<lane>``; ``at`` is a city time of the start day or an
    offset from the start. Raises ValueError naming the bad part."""
    try:
        parts = dict(item.split("=", 1) for item in text.split(",") if item.strip())
    except ValueError:
        raise ValueError(f"--incident {text!r}: expected key=value pairs separated by commas") from None
    unknown = set(parts) - {"kind", "at", "minutes", "lane"}
    if unknown:
        raise ValueError(f"--incident {text!r}: unknown keys {sorted(unknown)}; known: kind, at, minutes, lane")
    kind = parts.get("kind", "accident")
    if kind not in KINDS:
        raise ValueError(f"--incident {text!r}: kind must be one of {sorted(KINDS)}")
    return IncidentPlan(kind, _when(parts.get("at", "+0m"), start, text), float(parts.get("minutes", "20")),
                        parts.get("lane"))


def _when(at: str, start: datetime, text: str) -> datetime:
    if offset := re.fullmatch(r"\+(\d+(?:\.\d+)?)([smh])", at):
        seconds = float(offset[1]) * {"s": 1, "m": 60, "h": 3600}[offset[2]]
        return start + timedelta(seconds=seconds)
    try:
        clock = time.fromisoformat(at)
    except ValueError:
        raise ValueError(f"--incident {text!r}: at must be HH:MM (city time) or +<n>s|m|h") from None
    return datetime.combine(start.date(), clock, tzinfo=start.tzinfo)


@dataclass
class _Active:
    number: int
    plan: IncidentPlan
    lane: str
    alert: Alert


class IncidentSource(Source):
    topic = "incidents"
    every_s = DETECTOR_PERIOD_S

    def __init__(self, context: SourceContext, plans: list[IncidentPlan] = (), per_day: float = 0.0) -> None:
        super().__init__(context)
        if context.traffic is None:
            raise ValueError("the incident source needs the SUMO simulation")
        self.traffic = context.traffic
        self.pending = sorted(plans, key=lambda p: p.start)
        self.per_day = per_day
        self.active: list[_Active] = []
        self._count = 0

    def observe(self, now: datetime) -> list[Alert]:
        if self.per_day and self.rng.random() < self.per_day * self.every_s / 86400:
            self.pending.append(IncidentPlan(self.rng.choice(sorted(KINDS)), now, self.rng.uniform(10, 45)))
        events = [self._clear(incident, now) for incident in self.active
                  if now >= incident.plan.start + timedelta(minutes=incident.plan.minutes)]
        self.active = [i for i in self.active if now < i.plan.start + timedelta(minutes=i.plan.minutes)]
        while self.pending and self.pending[0].start <= now:
            events.append(self._begin(self.pending.pop(0), now))
        return events

    def _begin(self, plan: IncidentPlan, now: datetime) -> Alert:
        self._count += 1
        lane = plan.lane or self.rng.choice(self.traffic.detectors).lane
        name = f"incident-{self._count}"
        edge, index = lane.rsplit("_", 1)
        length = self.traffic.traci.lane.getLength(lane)
        if plan.kind == "accident":
            position = max(0.0, length - WRECK_FROM_END_M)
            self.traffic.crash(name, lane, position)
        else:
            position = length / 2
            self.traffic.close_lane(name, lane)
        lon, lat = self.traffic.geo(edge, position, int(index))
        alert = active_alert(name, plan.kind, lane, now, plan.minutes, lon, lat, self.city.extent.zone_of(lon, lat))
        self.active.append(_Active(self._count, plan, lane, alert))
        return alert

    def _clear(self, incident: _Active, now: datetime) -> Alert:
        self.traffic.clear(f"incident-{incident.number}")
        return cleared_alert(incident.alert, now)


def active_alert(name: str, kind: str, lane: str, now: datetime, minutes: float, lon: float, lat: float,
                 zone: str) -> Alert:
    """The Alert of an incident ``name`` of ``kind`` starting ``now`` on a SUMO ``lane``, at (lon, lat)."""
    edge, index = lane.rsplit("_", 1)
    sub_category, severity = KINDS[kind]
    return Alert(
        id=ngsi_id("Alert", name), dateObserved=now, category="traffic", subCategory=sub_category,
        severity=severity, status="active", description=f"{kind} on lane {index} of road segment {edge}",
        location=Location.at(lon, lat), zone=zone, refRoadSegment=ngsi_id("RoadSegment", edge),
        laneId=int(index), dateIssued=now, validFrom=now, validTo=now + timedelta(minutes=minutes),
        alertSource="smartcity simulator")


def cleared_alert(alert: Alert, now: datetime) -> Alert:
    """The Alert saying that the incident of the ``active`` one is over at ``now``."""
    return alert.model_copy(update={"status": "cleared", "dateObserved": now, "validTo": now})
