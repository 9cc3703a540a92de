-- The API's incident workflow (open -> acknowledged -> resolved), one case per incident, with its timeline.
-- Cases come from `POST /v1/incidents` (source 'api') or from the incidents the streams reported (source
-- 'stream', synced from the documents store's `incidents` collection). `version` counts the case's changes.

CREATE TABLE incident_cases (
    incident_id TEXT PRIMARY KEY,
    source TEXT NOT NULL CHECK (source IN ('api', 'stream')),
    state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    version INTEGER NOT NULL,
    category TEXT NOT NULL,
    severity TEXT NOT NULL,
    description TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    segment_id TEXT,
    lon DOUBLE PRECISION NOT NULL,
    lat DOUBLE PRECISION NOT NULL,
    reported_at TIMESTAMPTZ NOT NULL,
    cleared_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL,
    reported_by TEXT NOT NULL
);
CREATE INDEX incident_cases_reported ON incident_cases (reported_at DESC, incident_id DESC);
CREATE INDEX incident_cases_state ON incident_cases (state, reported_at DESC);

CREATE TABLE incident_case_timeline (
    incident_id TEXT NOT NULL REFERENCES incident_cases (incident_id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    at TIMESTAMPTZ NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    actor TEXT NOT NULL,
    note TEXT,
    PRIMARY KEY (incident_id, seq)
);
