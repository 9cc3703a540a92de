-- The anomaly models' scores and the hotspots clustered from them (models.anomaly).
--
-- anomaly_scores: every closed window the detect-anomalies function scored, one row per entity (sensor or road
-- segment, by target), window and model: the calibrated score (0..1), the basis the detector used (series,
-- road-class or global: a cold start says so), the features that weighed most (JSON {feature: weight}), whether
-- the score reached the alert threshold and, if so, the id of the Alert published on `incidents`. The sensor
-- window that triggered it gives the place (segment, zone, lon/lat), so anomalies can be mapped and clustered.
--
-- traffic_hotspots: the clusters of recent anomalies and incidents (cluster-hotspots), one row per hotspot id;
-- `active` rows are the current clusters, the others how a past hotspot last looked. `extent` is a GeoJSON
-- Polygon, `members` a JSON array of Alert ids, oldest first.
--
-- incident_reports gains the optional fields of a detected anomaly's Alert (anomalyScore, detectedBy,
-- contributions as JSON text).
-- Times are timestamptz on PostgreSQL and ISO 8601 UTC text on SQLite (the type name gives SQLite no affinity
-- that would change such text); booleans are 0/1 on SQLite.

CREATE TABLE anomaly_scores (
    entity_id text NOT NULL,
    window_start timestamptz NOT NULL,
    model text NOT NULL,
    target text NOT NULL,
    window_end timestamptz NOT NULL,
    model_version text NOT NULL,
    score double precision NOT NULL,
    basis text NOT NULL,
    contributions text NOT NULL,
    flagged boolean NOT NULL,
    alert_id text,
    sensor_id text NOT NULL,
    segment_id text NOT NULL,
    zone_id text NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    scored_at timestamptz NOT NULL,
    PRIMARY KEY (entity_id, window_start, model)
);
CREATE INDEX anomaly_scores_time ON anomaly_scores (window_start);
CREATE INDEX anomaly_scores_flagged ON anomaly_scores (window_start) WHERE flagged;

CREATE TABLE traffic_hotspots (
    id text PRIMARY KEY,
    active boolean NOT NULL,
    computed_at timestamptz NOT NULL,
    lon double precision NOT NULL,
    lat double precision NOT NULL,
    zone_id text NOT NULL,
    extent text NOT NULL,
    members text NOT NULL,
    anomalies integer NOT NULL,
    incidents integer NOT NULL,
    size integer NOT NULL,
    since timestamptz NOT NULL,
    last_seen timestamptz NOT NULL
);
CREATE INDEX traffic_hotspots_active ON traffic_hotspots (active, size);

ALTER TABLE incident_reports ADD COLUMN anomaly_score double precision;
ALTER TABLE incident_reports ADD COLUMN detected_by text;
ALTER TABLE incident_reports ADD COLUMN contributions text;
