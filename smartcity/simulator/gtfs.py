"""The GTFS reader lives in the city package (:mod:`smartcity.city.gtfs`); this name stays for the simulator's users."""

from smartcity.city.gtfs import REQUIRED, Calendar, Feed, GtfsError, Stop, StopTime, Trip, load_feed

__all__ = ["REQUIRED", "Calendar", "Feed", "GtfsError", "Stop", "StopTime", "Trip", "load_feed"]
