-- Forecasts the forecast-traffic function issued (one row per target, entity, origin, horizon and model), and,
-- once the window they forecast has closed, the actual value and the absolute error: the live accuracy that the
-- API (/v1/traffic/forecast/accuracy), the metrics and the Traffic dashboard show. The served model's rows sit
-- beside the historical average's for the same origins, so both are scored on the same windows.
-- Times are timestamptz on PostgreSQL and ISO 8601 UTC text on SQLite (the type name gives SQLite no affinity
-- that would change such text).

CREATE TABLE traffic_forecasts (
    target text NOT NULL,
    entity_id text NOT NULL,
    origin timestamptz NOT NULL,
    horizon_min integer NOT NULL,
    model text NOT NULL,
    target_time timestamptz NOT NULL,
    model_version text NOT NULL,
    p10 double precision NOT NULL,
    p50 double precision NOT NULL,
    p90 double precision NOT NULL,
    issued_at timestamptz NOT NULL,
    actual double precision,
    abs_error double precision,
    PRIMARY KEY (target, entity_id, origin, horizon_min, model)
);
CREATE INDEX traffic_forecasts_target_time ON traffic_forecasts (target, entity_id, target_time);
CREATE INDEX traffic_forecasts_scored ON traffic_forecasts (target_time) WHERE abs_error IS NOT NULL;
