"""How many processes `smartcity functions gateway` runs: --workers, else SMARTCITY_GATEWAY_WORKERS, else one per CPU."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from smartcity.cli.functions import worker_count
from smartcity.settings import Settings


def test_by_default_one_worker_per_cpu_the_process_may_run_on(monkeypatch, tmp_path):
    monkeypatch.delenv("SMARTCITY_GATEWAY_WORKERS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5})
    assert Settings(secrets_dir=tmp_path).gateway_workers == 0
    assert worker_count(None, Settings(secrets_dir=tmp_path).gateway_workers) == 3


def test_the_setting_wins_over_the_cpus_and_the_option_over_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTCITY_GATEWAY_WORKERS", "2")
    setting = Settings(secrets_dir=tmp_path).gateway_workers
    assert worker_count(None, setting) == 2
    assert worker_count(5, setting) == 5


def test_a_negative_worker_count_is_refused_naming_the_setting(monkeypatch, tmp_path):
    monkeypatch.setenv("SMARTCITY_GATEWAY_WORKERS", "-1")
    with pytest.raises(ValidationError, match="gateway_workers"):
        Settings(secrets_dir=tmp_path)
