"""How soon the demo starts a failed streaming job again (streaming.app.RestartBackoff): at once the first time,
then after 10 s, 20 s, 40 s ... at most 5 minutes, as Kubernetes paces a container that keeps failing; a job that
ran 10 minutes since its last restart starts at once again."""

from __future__ import annotations

from streaming.app import RestartBackoff


def test_a_job_that_keeps_failing_waits_twice_as_long_each_time_up_to_five_minutes():
    backoff, now, waits = RestartBackoff(), 1000.0, []
    for _ in range(8):
        failed_at = now + 1  # it fails a second after each start
        now = failed_at
        while not backoff.due("traffic", now):
            now += 1
        waits.append(now - failed_at)
        backoff.restarted("traffic", now)
    assert waits == [0, 9, 19, 39, 79, 159, 299, 299]  # 10, 20, 40 ... 300 s after the restart before


def test_a_job_that_ran_ten_minutes_since_its_restart_starts_at_once_again_and_jobs_are_paced_apart():
    backoff = RestartBackoff()
    for at in (0.0, 10.0, 30.0):
        assert backoff.due("mobility", at)
        backoff.restarted("mobility", at)
    assert not backoff.due("mobility", 31.0) and backoff.due("traffic", 31.0)  # its own pace, not the other's
    assert backoff.due("mobility", 30.0 + 600.0)  # it ran 10 minutes: the pacing starts over
    backoff.restarted("mobility", 630.0)
    assert not backoff.due("mobility", 631.0) and backoff.due("mobility", 640.0)
