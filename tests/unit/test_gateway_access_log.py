"""SMARTCITY_GATEWAY_ACCESS_LOG: uvicorn's line per request, on by default, off when the setting says so."""

from __future__ import annotations

import logging

from smartcity.runtime.gateway import access_log, build_gateway
from tests.api_samples.gateway import sample_settings

ACCESS = logging.getLogger("uvicorn.access")


def test_the_gateway_built_from_settings_turns_the_access_log_off_and_on(tmp_path):
    try:
        for on in (False, True):
            settings = sample_settings(tmp_path, gateway_access_log=on)
            build_gateway(settings.stack_file, settings, ["api-traffic"])
            if on:  # as the process's log level (SMARTCITY_LOG_LEVEL) says
                assert ACCESS.level == logging.NOTSET
            else:
                assert not ACCESS.isEnabledFor(logging.INFO) and ACCESS.isEnabledFor(logging.WARNING)
    finally:
        access_log(True)


def test_the_access_log_is_on_by_default(tmp_path):
    assert sample_settings(tmp_path).gateway_access_log is True
