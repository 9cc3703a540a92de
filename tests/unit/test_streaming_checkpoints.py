"""A job's checkpoint folder follows its state version; a job starting over forgets the watermark recorded."""

from __future__ import annotations

from datetime import datetime, timezone

from streaming import anomalies, mobility_index, traffic_windows
from streaming.audit import audit_job
from streaming.runner import Job, Watermarks


def test_a_job_whose_state_changed_checkpoints_in_a_folder_of_its_state_version():
    assert Job("traffic", (), "update", build=None, write=None).checkpoint == "traffic"
    assert Job("traffic", (), "update", build=None, write=None, state_version=3).checkpoint == "traffic.v3"
    # the windowed jobs' state changed with deduplication (v2), its key and store (v3); the stateless audit keeps
    # its offsets
    windowed = (traffic_windows.JOB, anomalies.JOB, mobility_index.JOB)
    assert [job.checkpoint for job in windowed] == ["traffic.v3", "anomalies.v3", "mobility.v3"]
    assert audit_job(windowed).checkpoint == "audit"


def test_a_forgotten_watermark_is_gone_and_others_stay(tmp_path):
    watermarks = Watermarks(tmp_path)
    moment = datetime(2024, 1, 1, 8, 0, tzinfo=timezone.utc)
    watermarks.advance("traffic", moment)
    watermarks.advance("mobility", moment)
    watermarks.forget("traffic")
    watermarks.forget("anomalies")  # none recorded: nothing to do
    assert watermarks.get("traffic") is None and watermarks.get("mobility") == moment
    watermarks.advance("traffic", datetime(2023, 1, 1, tzinfo=timezone.utc))  # earlier than the forgotten one
    assert watermarks.get("traffic") == datetime(2023, 1, 1, tzinfo=timezone.utc)
