"""When the demo's city starts: at a busy hour by default, so that a newcomer sees traffic whatever the hour.

The city then runs at the live pace (x``speed``) from there. ``--start`` takes:

- ``busy`` (the default of ``smartcity demo``): the wall clock between 06:00 and 22:00 city time; at night the
  next 07:30 (the morning peak), ahead of the clock; and never before the newest reading the data folder holds,
  so a resumed demo goes on where its city stopped instead of writing over it (``--fresh`` starts over);
- ``now``: the wall clock (the demo's behaviour before; :class:`smartcity.demo.DemoOptions`' default);
- ``HH:MM``: that time today, city time;
- an ISO 8601 moment with its offset (``2026-03-02T08:00:00+01:00``).

Times of day are the city's (its time zone from the city file), not the machine's.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta, tzinfo

BUSY_FROM, BUSY_UNTIL = time(6, 0), time(22, 0)
MORNING_PEAK = time(7, 30)
_TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})")


def check_start(choice: str) -> str:
    """``choice`` if it is one :func:`city_start` takes; ValueError saying what it takes otherwise."""
    if choice in ("busy", "now") or _time_of_day(choice) is not None:
        return choice
    try:
        moment = datetime.fromisoformat(choice)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{choice!r} is none of busy, now, HH:MM or an ISO 8601 moment with its offset")
    return choice


def busy_start(now: datetime, zone: tzinfo) -> datetime:
    """``now`` when it is between :data:`BUSY_FROM` and :data:`BUSY_UNTIL` city time, else the next 07:30."""
    local = now.astimezone(zone)
    if BUSY_FROM <= local.time() < BUSY_UNTIL:
        return local
    day = local.date() if local.time() < BUSY_FROM else local.date() + timedelta(days=1)
    return datetime.combine(day, MORNING_PEAK, zone)


def city_start(choice: str, now: datetime, zone: tzinfo, stored_until: datetime | None = None) -> datetime:
    """The city's first moment for a ``--start`` ``choice`` (see the module docstring), in the city's time zone.

    ``stored_until``: the newest reading the data folder holds, which a ``busy`` start does not go back before.
    """
    check_start(choice)
    if choice == "now":
        return now.astimezone(zone)
    if choice == "busy":
        start = busy_start(now, zone)
        if stored_until is not None and stored_until >= start:
            return (stored_until + timedelta(seconds=1)).astimezone(zone).replace(microsecond=0)
        return start
    of_day = _time_of_day(choice)
    if of_day is not None:
        return datetime.combine(now.astimezone(zone).date(), of_day, zone)
    return datetime.fromisoformat(choice).astimezone(zone)


def off_the_clock(start: datetime, now: datetime) -> bool:
    """Whether the city runs at another time than the wall clock's (by more than a minute)."""
    return abs((start - now).total_seconds()) > 60


def _time_of_day(text: str) -> time | None:
    match = _TIME_OF_DAY.fullmatch(text)
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        return None
    return time(int(match[1]), int(match[2]))
