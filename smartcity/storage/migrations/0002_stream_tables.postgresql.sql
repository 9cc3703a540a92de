-- The time-series table of each stream (see smartcity/storage/tables.py for how event fields become columns).
-- Range-partitioned by observed_at, one partition per UTC day (smartcity/storage/partitions.py creates them).
-- The primary key (event_id, observed_at) makes writes idempotent: the event id fixes its observation time.
-- Indexes serve the API's reads: by entity, road segment, zone, route or stop, over a time range.

-- traffic-sensors
CREATE TABLE traffic_flow (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    date_observed_from timestamptz NOT NULL,
    date_observed_to timestamptz NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    segment_id text NOT NULL,
    lane_id integer NOT NULL,
    zone_id text NOT NULL,
    intensity integer NOT NULL,
    intensity_per_hour double precision NOT NULL,
    occupancy double precision NOT NULL,
    average_vehicle_speed double precision,
    congested boolean NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX traffic_flow_entity_id_time ON traffic_flow (entity_id, observed_at);
CREATE INDEX traffic_flow_segment_id_time ON traffic_flow (segment_id, observed_at);
CREATE INDEX traffic_flow_zone_id_time ON traffic_flow (zone_id, observed_at);

-- public-transport
CREATE TABLE transport_positions (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    vehicle_id text NOT NULL,
    vehicle_type text NOT NULL,
    route_id text NOT NULL,
    trip_id text NOT NULL,
    stop_id text NOT NULL,
    stop_sequence integer NOT NULL,
    current_status text NOT NULL,
    delay integer NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    speed double precision NOT NULL,
    heading double precision NOT NULL,
    occupancy_status text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX transport_positions_route_id_time ON transport_positions (route_id, observed_at);
CREATE INDEX transport_positions_stop_id_time ON transport_positions (stop_id, observed_at);
CREATE INDEX transport_positions_vehicle_id_time ON transport_positions (vehicle_id, observed_at);
CREATE INDEX transport_positions_zone_id_time ON transport_positions (zone_id, observed_at);

-- taxi-vtc
CREATE TABLE taxi_trips (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    service_type text NOT NULL,
    vehicle_id text NOT NULL,
    driver_id text NOT NULL,
    trip_status text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    speed double precision NOT NULL,
    heading double precision NOT NULL,
    pickup_zone text NOT NULL,
    dropoff_zone text NOT NULL,
    passenger_count integer NOT NULL,
    distance_travelled double precision NOT NULL,
    fare double precision,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX taxi_trips_entity_id_time ON taxi_trips (entity_id, observed_at);
CREATE INDEX taxi_trips_zone_id_time ON taxi_trips (zone_id, observed_at);

-- parking
CREATE TABLE parking_occupancy (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    name text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    segment_id text NOT NULL,
    total_spot_number integer NOT NULL,
    occupied_spot_number integer NOT NULL,
    available_spot_number integer NOT NULL,
    occupancy double precision NOT NULL,
    status text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX parking_occupancy_entity_id_time ON parking_occupancy (entity_id, observed_at);
CREATE INDEX parking_occupancy_zone_id_time ON parking_occupancy (zone_id, observed_at);

-- bike-share
CREATE TABLE bike_station_status (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    name text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    total_slot_number integer NOT NULL,
    available_bike_number integer NOT NULL,
    free_slot_number integer NOT NULL,
    out_of_service_slot_number integer NOT NULL,
    is_installed boolean NOT NULL,
    is_renting boolean NOT NULL,
    is_returning boolean NOT NULL,
    status text NOT NULL,
    date_last_reported timestamptz NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX bike_station_status_entity_id_time ON bike_station_status (entity_id, observed_at);
CREATE INDEX bike_station_status_zone_id_time ON bike_station_status (zone_id, observed_at);

-- incidents
CREATE TABLE incident_reports (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    category text NOT NULL,
    sub_category text NOT NULL,
    severity text NOT NULL,
    status text NOT NULL,
    description text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    segment_id text NOT NULL,
    lane_id integer,
    date_issued timestamptz NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_to timestamptz,
    alert_source text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX incident_reports_entity_id_time ON incident_reports (entity_id, observed_at);
CREATE INDEX incident_reports_zone_id_time ON incident_reports (zone_id, observed_at);
CREATE INDEX incident_reports_segment_id_time ON incident_reports (segment_id, observed_at);

-- weather
CREATE TABLE weather_observations (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    name text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    temperature double precision NOT NULL,
    relative_humidity double precision NOT NULL,
    atmospheric_pressure double precision NOT NULL,
    precipitation double precision NOT NULL,
    wind_speed double precision NOT NULL,
    wind_direction double precision NOT NULL,
    weather_type text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX weather_observations_entity_id_time ON weather_observations (entity_id, observed_at);
CREATE INDEX weather_observations_zone_id_time ON weather_observations (zone_id, observed_at);

-- air-quality
CREATE TABLE air_quality_observations (
    event_id text NOT NULL,
    entity_id text NOT NULL,
    observed_at timestamptz NOT NULL,
    name text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    no2 double precision NOT NULL,
    pm10 double precision NOT NULL,
    pm25 double precision NOT NULL,
    o3 double precision NOT NULL,
    co double precision NOT NULL,
    air_quality_index integer NOT NULL,
    air_quality_level text NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, observed_at)
) PARTITION BY RANGE (observed_at);
CREATE INDEX air_quality_observations_entity_id_time ON air_quality_observations (entity_id, observed_at);
CREATE INDEX air_quality_observations_zone_id_time ON air_quality_observations (zone_id, observed_at);
