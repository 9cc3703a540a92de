-- Reference tables: the city's fixed things that events refer to, loaded by `smartcity db load-reference`.
-- Ids are those the events carry: NGSI-LD ids (urn:ngsi-ld:<Type>:<id>) for sensors, road segments, stations
-- and parkings; GTFS ids for stops and routes; Z<row><col> for zones. Positions are WGS84 lon/lat degrees.
-- No foreign keys: an event may name an entity before its reference row is loaded.

CREATE TABLE zones (
    zone_id TEXT PRIMARY KEY,
    row_number INTEGER NOT NULL,
    col_number INTEGER NOT NULL,
    west DOUBLE PRECISION NOT NULL,
    south DOUBLE PRECISION NOT NULL,
    east DOUBLE PRECISION NOT NULL,
    north DOUBLE PRECISION NOT NULL
);

CREATE TABLE road_segments (
    segment_id TEXT PRIMARY KEY,
    name TEXT,
    zone_id TEXT NOT NULL,
    lanes INTEGER NOT NULL,
    length_m DOUBLE PRECISION NOT NULL,
    speed_limit_kmh DOUBLE PRECISION NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    lat DOUBLE PRECISION NOT NULL
);
CREATE INDEX road_segments_zone ON road_segments (zone_id);

CREATE TABLE sensors (
    sensor_id TEXT PRIMARY KEY,
    segment_id TEXT NOT NULL,
    lane_id INTEGER NOT NULL,
    zone_id TEXT NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    lat DOUBLE PRECISION NOT NULL
);
CREATE INDEX sensors_segment ON sensors (segment_id);
CREATE INDEX sensors_zone ON sensors (zone_id);

CREATE TABLE routes (
    route_id TEXT PRIMARY KEY,
    short_name TEXT NOT NULL,
    long_name TEXT,
    route_type TEXT NOT NULL
);

CREATE TABLE stops (
    stop_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    lat DOUBLE PRECISION NOT NULL
);
CREATE INDEX stops_zone ON stops (zone_id);

-- Bike-share docking stations, weather stations and air-quality stations, told apart by kind (their stream).
CREATE TABLE stations (
    station_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('bike-share', 'weather', 'air-quality')),
    name TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    capacity INTEGER,
    lon DOUBLE PRECISION NOT NULL,
    lat DOUBLE PRECISION NOT NULL
);
CREATE INDEX stations_kind_zone ON stations (kind, zone_id);

CREATE TABLE parkings (
    parking_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    segment_id TEXT,
    capacity INTEGER NOT NULL,
    lon DOUBLE PRECISION NOT NULL,
    lat DOUBLE PRECISION NOT NULL
);
CREATE INDEX parkings_zone ON parkings (zone_id);
