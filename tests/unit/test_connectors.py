"""The connectors' parts, one small test each: backoff, change detection, feed parsing, mapping
files, and ``smartcity connect``'s answers to bad arguments."""

from __future__ import annotations

import json
import random
import threading

import pytest
from google.transit import gtfs_realtime_pb2 as rt
from typer.testing import CliRunner

from smartcity.cli import app
from smartcity.connectors import gbfs, gbfs_vehicles
from smartcity.city.files import configured_city, save_city
from smartcity.connectors.gtfs_realtime import GtfsRealtimeSource, parse, reported_delay, static_gtfs, static_gtfs_path
from smartcity.connectors.http_poller import HttpSource, Mapping, apply, load_mapping, lookup, MISSING, FieldRule
from smartcity.connectors.polling import Backoff, ChangeTracker, Fetcher, MalformedFeed, Poller, Reading
from smartcity.errors import ConfigurationError
from smartcity.settings import get_settings
from smartcity.city.gtfs import StopTime


def test_backoff_doubles_up_to_its_cap_keeping_half_to_all_of_each_step():
    backoff = Backoff(initial_s=1.0, maximum_s=10.0, rng=random.Random(3))
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (12, 10)]:
        delays = [backoff.delay(failures) for _ in range(200)]
        assert ceiling / 2 <= min(delays) and max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 4  # jittered, not one fixed value


def test_an_entity_is_changed_unless_only_its_volatile_fields_moved():
    tracker = ChangeTracker(("dateObserved", "dateLastReported"))
    first = Reading("bike-share", "s1", {"dateObserved": "t1", "dateLastReported": "t1", "bikes": 3})
    assert tracker.changed([first]) == [first]
    tracker.remember([first])
    later = Reading("bike-share", "s1", {"dateObserved": "t2", "dateLastReported": "t2", "bikes": 3})
    moved = Reading("bike-share", "s1", {"dateObserved": "t3", "dateLastReported": "t3", "bikes": 2})
    other = Reading("bike-share", "s2", {"dateObserved": "t2", "bikes": 3})
    assert tracker.changed([later, other]) == [other] and tracker.changed([moved]) == [moved]


# --- GBFS ---------------------------------------------------------------------------------------------------


def test_gbfs_discovery_reads_2_3_and_3_0_and_names_what_is_missing():
    feeds = [{"name": "station_status", "url": "http://x/ss.json"}]
    assert gbfs.feed_urls("u", json.dumps({"data": {"en": {"feeds": feeds}}}).encode()) == {"station_status": "http://x/ss.json"}
    assert gbfs.feed_urls("u", json.dumps({"data": {"feeds": feeds}}).encode()) == {"station_status": "http://x/ss.json"}
    with pytest.raises(MalformedFeed) as raised:
        gbfs.feed_urls("u", b'{"data": {"feeds": [{"url": "http://x"}]}}')
    assert raised.value.field == "data.feeds"
    with pytest.raises(MalformedFeed) as raised:
        gbfs.feed_urls("u", b"{not json")
    assert raised.value.field == "body" and "not JSON" in raised.value.reason


def test_a_gbfs_station_lacking_a_field_is_sent_without_it_for_ingest_to_name():
    reading = gbfs.station_reading("s1", {"name": "Dock", "lat": 50.9, "lon": 6.9},
                                   {"num_docks_available": 3, "is_installed": True, "is_renting": True,
                                    "is_returning": True, "last_reported": 1772434800}, 1772434805)
    assert "availableBikeNumber" not in reading.data and "status" not in reading.data
    assert "totalSlotNumber" not in reading.data  # no capacity, and no count to derive it from
    assert reading.data["dateLastReported"] == "2026-03-02T07:00:00+00:00"


def test_gbfs_status_follows_the_simulators_rule():
    assert [gbfs.status_of(b, d, True, True) for b, d in [(0, 5), (5, 0), (2, 5), (5, 2), (5, 5)]] == [
        "empty", "full", "almostEmpty", "almostFull", "working"]
    assert gbfs.status_of(5, 5, True, False) == gbfs.status_of(None, None, False, True) == "outOfService"


def test_gbfs_vehicles_of_2_3_and_3_0_are_read_with_their_type_and_a_docked_one_placed_at_its_station():
    types = gbfs_vehicles.vehicle_types("u", json.dumps({"data": {"vehicle_types": [
        {"vehicle_type_id": "eb", "form_factor": "bicycle", "propulsion_type": "electric_assist"}]}}).encode())
    bikes, updated = gbfs_vehicles.vehicles("u", json.dumps({"last_updated": 1772434805, "data": {"bikes": [
        {"bike_id": "b1", "lat": 50.9, "lon": 6.9, "is_reserved": False, "is_disabled": True,
         "vehicle_type_id": "eb", "current_range_meters": 8000, "last_reported": 1772434800}]}}).encode())
    [free] = [gbfs_vehicles.vehicle_reading(bike, types, {}, updated) for bike in bikes]
    assert free == Reading("bike-share-vehicles", "b1", {
        "id": "b1", "dateObserved": "2026-03-02T07:00:05+00:00", "location": {"type": "Point", "coordinates": [6.9, 50.9]},
        "vehicleType": "eb", "formFactor": "bicycle", "propulsionType": "electric_assist", "currentRangeMeters": 8000,
        "isReserved": False, "isDisabled": True, "dateLastReported": "2026-03-02T07:00:00+00:00"})
    [docked], _ = gbfs_vehicles.vehicles("u", b'{"data": {"vehicles": [{"vehicle_id": "v2", "station_id": "s1", '
                                              b'"is_reserved": true, "is_disabled": false}]}}')
    reading = gbfs_vehicles.vehicle_reading(docked, {}, {"s1": {"lat": 50.8, "lon": 6.8}}, "2026-03-02T08:00:00Z")
    assert reading.key == "v2" and reading.data["location"]["coordinates"] == [6.8, 50.8]
    assert reading.data["stationId"] == "s1" and "formFactor" not in reading.data  # no vehicle_types: left out


@pytest.mark.parametrize("body, field", [
    (b'{"data": {"bikes": [{"lat": 1}]}}', "data.bikes"),
    (b'{"data": {"vehicles": {}}}', "data.vehicles"),
    (b'{"data": {}}', "data.vehicles"),
])
def test_a_vehicles_document_without_a_list_of_identified_vehicles_is_malformed(body, field):
    with pytest.raises(MalformedFeed) as raised:
        gbfs_vehicles.vehicles("u", body)
    assert raised.value.field == field


def test_an_entity_gone_from_the_feed_is_forgotten_and_new_again_when_it_comes_back():
    tracker = ChangeTracker()
    first, second = Reading("bike-share-vehicles", "b1", {"x": 1}), Reading("bike-share-vehicles", "b2", {"x": 1})
    tracker.remember([first, second])
    tracker.forget_absent([second])  # b1 got a new id after its trip: it is not remembered for ever
    assert tracker.changed([first, second]) == [first]


# --- GTFS-realtime ------------------------------------------------------------------------------------------


def test_a_body_that_is_not_a_feed_message_is_malformed_naming_why():
    with pytest.raises(MalformedFeed) as raised:
        parse("u", b"\xff\xff\xff\xff")
    assert raised.value.field == "body" and "FeedMessage" in raised.value.reason
    with pytest.raises(MalformedFeed) as raised:
        parse("u", rt.FeedMessage().SerializePartialToString())
    assert raised.value.field in ("body", "header.gtfs_realtime_version")


def test_a_trip_updates_delay_is_the_one_at_the_stop_or_the_last_before_it():
    update = rt.TripUpdate()
    update.trip.trip_id = "t"
    update.stop_time_update.add(stop_sequence=1, stop_id="A").arrival.delay = 60
    update.stop_time_update.add(stop_sequence=3, stop_id="C").departure.delay = 180
    at = lambda sequence, stop: StopTime(stop, sequence, 0, 0, None)  # noqa: E731
    assert [reported_delay(update, at(n, s)) for n, s in [(1, "A"), (2, "B"), (3, "C"), (4, "D")]] == [60, 60, 180, 180]
    assert reported_delay(update, at(0, "Z")) is None


# --- mapping files ------------------------------------------------------------------------------------------


def test_a_mapping_file_is_refused_naming_each_bad_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("stream: noise\nformat: xml\nid: ''\nfields:\n  a: {from: x, value: 1}\n")
    with pytest.raises(ConfigurationError) as raised:
        load_mapping(path)
    message = str(raised.value)
    assert message.startswith("--mapping:")
    assert all(name in message for name in ("stream", "format", "id", "fields.a"))
    assert "unknown stream 'noise'" in message


def test_rules_look_up_convert_scale_and_mark_units():
    record = {"obs": {"t": "1772434800", "v": ["7", "8"]}, "empty": ""}
    assert lookup(record, "obs.v.1") == "8" and lookup(record, "obs.w") is MISSING
    assert apply(FieldRule(source="obs.t", type="timestamp"), record) == "2026-03-02T07:00:00+00:00"
    assert apply(FieldRule(source="obs.v.0", type="float", scale=0.5), record) == 3.5
    assert apply(FieldRule(source="empty"), record) is MISSING and apply(FieldRule(value="taxi"), record) == "taxi"
    assert apply(FieldRule(source="obs.t", type="int"), {"obs": {"t": "n/a"}}) == "n/a"  # for ingest to refuse
    mapping = Mapping(stream="weather", records="items", id="code",
                      fields={"temperature": {"from": "f", "unit": "°F"}, "lon": "x", "lat": "y"})
    source = HttpSource("http://x", mapping)
    [reading] = [source.reading(0, record, "2026-03-02T07:00:00+00:00")
                 for record in source.records(b'{"items": [{"code": "w1", "f": 50, "x": 6.9, "y": 50.9}]}')]
    assert reading.data == {"dateObserved": "2026-03-02T07:00:00+00:00", "id": "w1", "temperature[°F]": 50,
                            "lon": 6.9, "lat": 50.9}
    with pytest.raises(MalformedFeed) as raised:
        source.records(b'{"data": []}')
    assert raised.value.field == "items"


# --- the command --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arguments, message", [
    (["ftp", "http://127.0.0.1:9/x"], "unknown connector 'ftp'"),
    (["gbfs", "file:///etc/passwd"], "http:// or https://"),
    (["http", "http://127.0.0.1:9/x"], "needs a mapping file"),
])
def test_bad_arguments_exit_2_with_a_message(arguments, message, tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCITY_BUS_URL", f"file://{tmp_path}/bus")
    result = CliRunner().invoke(app, ["connect", *arguments, "--once"])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_options_after_kind_and_url_parse_and_the_usage_names_no_subcommand(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTCITY_BUS_URL", f"file://{tmp_path}/bus")
    given: dict[str, float] = {}

    def poller(source, gateway, bus, partitions, interval_s, backoff, key):
        given["interval_s"] = interval_s
        raise RuntimeError("parsed")  # the command got this far: its arguments and options were read

    monkeypatch.setattr("smartcity.connectors.poller", poller)
    result = CliRunner().invoke(app, ["connect", "gbfs", "http://127.0.0.1:9/gbfs.json", "--once", "--interval", "5"])
    assert str(result.exception) == "parsed", result.output
    assert given == {"interval_s": 5.0}
    usage = CliRunner().invoke(app, ["connect", "--help"]).output
    assert "connect [OPTIONS] {kind} {url}" in usage and "COMMAND" not in usage


def test_service_alerts_become_incidents_where_they_fit_a_stop_and_a_cause():
    feed = static_gtfs()
    stop = sorted(feed.stops)[0]
    source = GtfsRealtimeSource("http://agency.example/rt", feed)

    def alert(cause, ended: bool = False, stop_id: str = stop):
        message = rt.Alert(cause=cause)
        message.informed_entity.add(stop_id=stop_id)
        message.active_period.add(start=1000, end=1500 if ended else 0)
        return message

    works = source.alert("a", alert(rt.Alert.MAINTENANCE), header_time=2000)
    assert (works.topic, works.data["subCategory"], works.data["status"]) == ("incidents", "roadWorks", "active")
    assert works.data["validTo"] is None and works.data["severity"] == "informational"
    assert works.data["location"]["coordinates"] == [feed.stops[stop].lon, feed.stops[stop].lat]
    cleared = source.alert("b", alert(rt.Alert.ACCIDENT, ended=True), header_time=2000)
    assert (cleared.data["subCategory"], cleared.data["status"]) == ("carAccident", "cleared")
    assert source.alert("c", alert(rt.Alert.STRIKE), header_time=2000) is None  # no incident of the roads
    assert source.alert("d", alert(rt.Alert.ACCIDENT, stop_id="no-such-stop"), header_time=2000) is None


def test_an_unforeseen_error_in_a_poll_backs_off_instead_of_ending_the_loop():
    class Flaky:
        kind = "flaky"
        calls = 0

        def read(self, fetcher):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise KeyError("a field no one expected")
            return None

    outcomes, waits = [], []
    poller = Poller(Flaky(), Fetcher(None), None, None, interval_s=30.0, backoff=Backoff(rng=random.Random(1)))
    poller.run(threading.Event(), wait=lambda s: waits.append(s) or len(outcomes) >= 2, on_poll=outcomes.append)
    assert isinstance(outcomes[0], KeyError) and outcomes[1].not_modified
    assert waits[0] <= 1.0 and waits[1] == 30.0


def test_the_static_gtfs_is_the_configured_citys(tmp_path, monkeypatch):
    city = configured_city()
    feed = tmp_path / "feeds" / "gtfs.zip"
    for transit, expected in [(city.transit.model_copy(update={"gtfs": "feeds/gtfs.zip"}), feed),
                              (city.transit.model_copy(update={"gtfs": None}), None)]:
        path = save_city(city.model_copy(update={"transit": transit}), tmp_path / f"city-{expected is None}.json")
        monkeypatch.setenv("SMARTCITY_CITY_FILE", str(path))
        get_settings.cache_clear()
        try:
            if expected is None:
                with pytest.raises(ConfigurationError, match="no GTFS feed"):
                    static_gtfs_path()
            else:
                assert static_gtfs_path() == feed  # relative to the city file
        finally:
            get_settings.cache_clear()
