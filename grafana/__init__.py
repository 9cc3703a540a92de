"""Grafana dashboards and alert rules as code, for the platform's Prometheus metrics and PostgreSQL tables.

Three dashboards, as in the design: ``overview`` (the system), ``traffic`` (traffic management) and ``mobility``
(transport and mobility), plus alert rules (``alerts``). ``smartcity grafana build`` renders them to
``grafana/dashboards/*.json`` and ``grafana/provisioning/`` (:mod:`grafana.build`), which Grafana loads at start.
:mod:`grafana.interpolate` expands Grafana's variables and macros, so tests run every query against the real
Prometheus and PostgreSQL without a Grafana.
"""

from pathlib import Path

GRAFANA_DIR = Path(__file__).resolve().parent
