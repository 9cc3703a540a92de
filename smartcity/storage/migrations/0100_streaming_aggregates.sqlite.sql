-- The streaming jobs' 5-minute aggregates and anomaly flags, as in 0100_streaming_aggregates.postgresql.sql.
-- Timestamps are ISO 8601 text in UTC. Keys are (entity, window_start): the jobs upsert, so a replay writes the
-- same row again instead of counting twice.

CREATE TABLE traffic_sensor_5min (
    sensor_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    lane_id INTEGER NOT NULL,
    lon REAL NOT NULL,
    lat REAL NOT NULL,
    event_count INTEGER NOT NULL,
    flow INTEGER NOT NULL,
    flow_per_hour REAL NOT NULL,
    mean_speed_kmh REAL,
    speed_p50_kmh REAL,
    speed_p85_kmh REAL,
    speed_p95_kmh REAL,
    mean_occupancy REAL NOT NULL,
    congestion_index REAL NOT NULL,
    last_event_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (sensor_id, window_start)
);
CREATE INDEX traffic_sensor_5min_window ON traffic_sensor_5min (window_start);
CREATE INDEX traffic_sensor_5min_segment ON traffic_sensor_5min (segment_id, window_start);

CREATE TABLE traffic_segment_5min (
    segment_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    sensor_count INTEGER NOT NULL,
    event_count INTEGER NOT NULL,
    flow INTEGER NOT NULL,
    flow_per_hour REAL NOT NULL,
    mean_speed_kmh REAL,
    speed_p50_kmh REAL,
    speed_p85_kmh REAL,
    speed_p95_kmh REAL,
    mean_occupancy REAL NOT NULL,
    congestion_index REAL NOT NULL,
    last_event_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (segment_id, window_start)
);
CREATE INDEX traffic_segment_5min_window ON traffic_segment_5min (window_start);

CREATE TABLE mobility_index_5min (
    zone_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    window_end TEXT NOT NULL,
    mobility_index REAL,
    traffic_score REAL,
    transit_score REAL,
    bikes_score REAL,
    parking_score REAL,
    taxi_score REAL,
    air_score REAL,
    mean_speed_kmh REAL,
    mean_occupancy REAL,
    mean_bus_delay_s REAL,
    bikes_available INTEGER,
    bike_docks INTEGER,
    parking_occupied INTEGER,
    parking_spots INTEGER,
    taxi_waiting_trips INTEGER,
    mean_caqi REAL,
    event_count INTEGER NOT NULL,
    last_event_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (zone_id, window_start)
);
CREATE INDEX mobility_index_5min_window ON mobility_index_5min (window_start);

CREATE TABLE traffic_anomalies (
    sensor_id TEXT NOT NULL,
    window_start TEXT NOT NULL,
    metric TEXT NOT NULL,
    window_end TEXT NOT NULL,
    segment_id TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    value REAL NOT NULL,
    baseline_median REAL NOT NULL,
    baseline_mad REAL NOT NULL,
    baseline_samples INTEGER NOT NULL,
    robust_z REAL NOT NULL,
    severity TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    PRIMARY KEY (sensor_id, window_start, metric)
);
CREATE INDEX traffic_anomalies_window ON traffic_anomalies (window_start);
