-- The time-series table of each stream, as in 0002_stream_tables.postgresql.sql, without partitioning.
-- Timestamps are ISO 8601 text in UTC; booleans are 0/1.

-- traffic-sensors
CREATE TABLE traffic_flow (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    date_observed_from TEXT NOT NULL,
    date_observed_to TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    segment_id TEXT NOT NULL,
    lane_id INTEGER NOT NULL,
    zone_id TEXT NOT NULL,
    intensity INTEGER NOT NULL,
    intensity_per_hour REAL NOT NULL,
    occupancy REAL NOT NULL,
    average_vehicle_speed REAL,
    congested INTEGER NOT NULL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX traffic_flow_entity_id_time ON traffic_flow (entity_id, observed_at);
CREATE INDEX traffic_flow_segment_id_time ON traffic_flow (segment_id, observed_at);
CREATE INDEX traffic_flow_zone_id_time ON traffic_flow (zone_id, observed_at);
CREATE INDEX traffic_flow_time ON traffic_flow (observed_at);

-- public-transport
CREATE TABLE transport_positions (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    vehicle_type TEXT NOT NULL,
    route_id TEXT NOT NULL,
    trip_id TEXT NOT NULL,
    stop_id TEXT NOT NULL,
    stop_sequence INTEGER NOT NULL,
    current_status TEXT NOT NULL,
    delay INTEGER NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    zone_id TEXT NOT NULL,
    speed REAL NOT NULL,
    heading REAL NOT NULL,
    occupancy_status TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX transport_positions_route_id_time ON transport_positions (route_id, observed_at);
CREATE INDEX transport_positions_stop_id_time ON transport_positions (stop_id, observed_at);
CREATE INDEX transport_positions_vehicle_id_time ON transport_positions (vehicle_id, observed_at);
CREATE INDEX transport_positions_zone_id_time ON transport_positions (zone_id, observed_at);
CREATE INDEX transport_positions_time ON transport_positions (observed_at);

-- taxi-vtc
CREATE TABLE taxi_trips (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    service_type TEXT NOT NULL,
    vehicle_id TEXT NOT NULL,
    driver_id TEXT NOT NULL,
    trip_status TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    zone_id TEXT NOT NULL,
    speed REAL NOT NULL,
    heading REAL NOT NULL,
    pickup_zone TEXT NOT NULL,
    dropoff_zone TEXT NOT NULL,
    passenger_count INTEGER NOT NULL,
    distance_travelled REAL NOT NULL,
    fare REAL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX taxi_trips_entity_id_time ON taxi_trips (entity_id, observed_at);
CREATE INDEX taxi_trips_zone_id_time ON taxi_trips (zone_id, observed_at);
CREATE INDEX taxi_trips_time ON taxi_trips (observed_at);

-- parking
CREATE TABLE parking_occupancy (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    name TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    zone_id TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    total_spot_number INTEGER NOT NULL,
    occupied_spot_number INTEGER NOT NULL,
    available_spot_number INTEGER NOT NULL,
    occupancy REAL NOT NULL,
    status TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX parking_occupancy_entity_id_time ON parking_occupancy (entity_id, observed_at);
CREATE INDEX parking_occupancy_zone_id_time ON parking_occupancy (zone_id, observed_at);
CREATE INDEX parking_occupancy_time ON parking_occupancy (observed_at);

-- bike-share
CREATE TABLE bike_station_status (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    name TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    zone_id TEXT NOT NULL,
    total_slot_number INTEGER NOT NULL,
    available_bike_number INTEGER NOT NULL,
    free_slot_number INTEGER NOT NULL,
    out_of_service_slot_number INTEGER NOT NULL,
    is_installed INTEGER NOT NULL,
    is_renting INTEGER NOT NULL,
    is_returning INTEGER NOT NULL,
    status TEXT NOT NULL,
    date_last_reported TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX bike_station_status_entity_id_time ON bike_station_status (entity_id, observed_at);
CREATE INDEX bike_station_status_zone_id_time ON bike_station_status (zone_id, observed_at);
CREATE INDEX bike_station_status_time ON bike_station_status (observed_at);

-- incidents
CREATE TABLE incident_reports (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    category TEXT NOT NULL,
    sub_category TEXT NOT NULL,
    severity TEXT NOT NULL,
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    zone_id TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    lane_id INTEGER,
    date_issued TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_to TEXT,
    alert_source TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX incident_reports_entity_id_time ON incident_reports (entity_id, observed_at);
CREATE INDEX incident_reports_zone_id_time ON incident_reports (zone_id, observed_at);
CREATE INDEX incident_reports_segment_id_time ON incident_reports (segment_id, observed_at);
CREATE INDEX incident_reports_time ON incident_reports (observed_at);

-- weather
CREATE TABLE weather_observations (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    name TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    zone_id TEXT NOT NULL,
    temperature REAL NOT NULL,
    relative_humidity REAL NOT NULL,
    atmospheric_pressure REAL NOT NULL,
    precipitation REAL NOT NULL,
    wind_speed REAL NOT NULL,
    wind_direction REAL NOT NULL,
    weather_type TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX weather_observations_entity_id_time ON weather_observations (entity_id, observed_at);
CREATE INDEX weather_observations_zone_id_time ON weather_observations (zone_id, observed_at);
CREATE INDEX weather_observations_time ON weather_observations (observed_at);

-- air-quality
CREATE TABLE air_quality_observations (
    event_id TEXT NOT NULL,
    entity_id TEXT NOT NULL,
    observed_at TEXT NOT NULL,
    name TEXT NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    zone_id TEXT NOT NULL,
    no2 REAL NOT NULL,
    pm10 REAL NOT NULL,
    pm25 REAL NOT NULL,
    o3 REAL NOT NULL,
    co REAL NOT NULL,
    air_quality_index INTEGER NOT NULL,
    air_quality_level TEXT NOT NULL,
    stored_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (event_id)
);
CREATE INDEX air_quality_observations_entity_id_time ON air_quality_observations (entity_id, observed_at);
CREATE INDEX air_quality_observations_zone_id_time ON air_quality_observations (zone_id, observed_at);
CREATE INDEX air_quality_observations_time ON air_quality_observations (observed_at);
