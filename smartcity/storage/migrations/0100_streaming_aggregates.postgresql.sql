-- The streaming jobs' 5-minute aggregates (streaming/traffic_windows.py, streaming/mobility_index.py) and
-- anomaly flags (streaming/anomalies.py). Each key is (entity, window_start): the jobs upsert the current value
-- of a window every micro-batch, so a replayed batch writes the same row again instead of counting twice.
-- Ids are the events' NGSI-LD ids, as in the stream tables (traffic_flow.entity_id, traffic_flow.segment_id).

CREATE TABLE traffic_sensor_5min (
    sensor_id text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    segment_id text NOT NULL,
    zone_id text NOT NULL,
    lane_id integer NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    event_count bigint NOT NULL,
    flow bigint NOT NULL,
    flow_per_hour double precision NOT NULL,
    mean_speed_kmh double precision,
    speed_p50_kmh double precision,
    speed_p85_kmh double precision,
    speed_p95_kmh double precision,
    mean_occupancy double precision NOT NULL,
    congestion_index double precision NOT NULL,
    last_event_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, window_start)
);
CREATE INDEX traffic_sensor_5min_window ON traffic_sensor_5min (window_start);
CREATE INDEX traffic_sensor_5min_segment ON traffic_sensor_5min (segment_id, window_start);

CREATE TABLE traffic_segment_5min (
    segment_id text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    zone_id text NOT NULL,
    sensor_count integer NOT NULL,
    event_count bigint NOT NULL,
    flow bigint NOT NULL,
    flow_per_hour double precision NOT NULL,
    mean_speed_kmh double precision,
    speed_p50_kmh double precision,
    speed_p85_kmh double precision,
    speed_p95_kmh double precision,
    mean_occupancy double precision NOT NULL,
    congestion_index double precision NOT NULL,
    last_event_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (segment_id, window_start)
);
CREATE INDEX traffic_segment_5min_window ON traffic_segment_5min (window_start);

CREATE TABLE mobility_index_5min (
    zone_id text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end timestamptz NOT NULL,
    mobility_index double precision,
    traffic_score double precision,
    transit_score double precision,
    bikes_score double precision,
    parking_score double precision,
    taxi_score double precision,
    air_score double precision,
    mean_speed_kmh double precision,
    mean_occupancy double precision,
    mean_bus_delay_s double precision,
    bikes_available bigint,
    bike_docks bigint,
    parking_occupied bigint,
    parking_spots bigint,
    taxi_waiting_trips integer,
    mean_caqi double precision,
    event_count bigint NOT NULL,
    last_event_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (zone_id, window_start)
);
CREATE INDEX mobility_index_5min_window ON mobility_index_5min (window_start);

CREATE TABLE traffic_anomalies (
    sensor_id text NOT NULL,
    window_start timestamptz NOT NULL,
    metric text NOT NULL,
    window_end timestamptz NOT NULL,
    segment_id text NOT NULL,
    zone_id text NOT NULL,
    value double precision NOT NULL,
    baseline_median double precision NOT NULL,
    baseline_mad double precision NOT NULL,
    baseline_samples integer NOT NULL,
    robust_z double precision NOT NULL,
    severity text NOT NULL,
    alert_id text NOT NULL,
    detected_at timestamptz NOT NULL,
    PRIMARY KEY (sensor_id, window_start, metric)
);
CREATE INDEX traffic_anomalies_window ON traffic_anomalies (window_start);
