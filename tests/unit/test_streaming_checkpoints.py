"""A job's checkpoint folder follows its state version, and those of its former versions are found to remove; a job
starting over forgets the watermark recorded."""

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


def test_the_checkpoints_of_a_jobs_former_state_versions_are_superseded_and_no_others(tmp_path):
    for name in ("traffic", "traffic.v2", "traffic.v3", "traffic.v4", "anomalies.v2", "audit"):
        (tmp_path / name).mkdir()
    (tmp_path / "traffic.watermark").write_text("{}")  # a file, not a checkpoint
    job = Job("traffic", (), "update", build=None, write=None, state_version=3)
    assert job.superseded_checkpoints(tmp_path) == [tmp_path / "traffic", tmp_path / "traffic.v2"]
    assert Job("audit", (), "append", build=None, write=None).superseded_checkpoints(tmp_path) == []
    assert Job("mobility", (), "update", build=None, write=None, state_version=3).superseded_checkpoints(tmp_path) == []
