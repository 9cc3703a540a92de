"""Who sees what in Grafana, and where alerts go: teams, folder and data source permissions, contact points and
notification policies, as code.

Teams (Grafana team names) and what they may do:

- ``smartcity-operators`` view the dashboards and alerts (folder permission View; data sources: Query);
- ``smartcity-analysts`` edit them (Edit; Query);
- ``smartcity-admins`` administer them (Admin; Admin).

Grafana's file provisioning covers alerting (``provisioning/alerting/contact-points.yml`` and
``notification-policies.yml``) but not teams nor permissions: those are ``rbac/rbac.json``, applied through
Grafana's HTTP API by ``smartcity grafana apply-rbac`` (:mod:`grafana.apply_rbac`). Data source permissions are a
Grafana Enterprise / Cloud feature; on Grafana OSS every user of the organisation may query every data source.

Alert routing: every rule carries ``platform=smartcity``, a ``severity`` and an ``area`` (its group: ``platform``
or ``city``). Platform alerts go to the platform team's address, city alerts to the operators', and critical ones
(of either area) also to the on-call address. The addresses are the deployment's, read by Grafana from its
environment when it loads the files (:data:`CONTACT_VARIABLES`).
"""

from __future__ import annotations

from typing import Any

from grafana import alerts, datasources

FOLDER_UID = "smartcity"
OPERATORS, ANALYSTS, ADMINS = "smartcity-operators", "smartcity-analysts", "smartcity-admins"
TEAMS = {
    OPERATORS: "City operators: watch the dashboards and alerts (view only).",
    ANALYSTS: "Data analysts: build and change dashboards and alert rules.",
    ADMINS: "Platform administrators: everything, including permissions.",
}
FOLDER_PERMISSIONS = {OPERATORS: "View", ANALYSTS: "Edit", ADMINS: "Admin"}
DATASOURCE_PERMISSIONS = {OPERATORS: "Query", ANALYSTS: "Query", ADMINS: "Admin"}

PAGER, PLATFORM, CITY = "smartcity-on-call", "smartcity-platform", "smartcity-city-operations"
# Grafana expands $VARIABLES in provisioning files from its environment: the deployment sets these.
CONTACT_VARIABLES = {
    PAGER: "GRAFANA_ALERT_EMAIL_ON_CALL",
    PLATFORM: "GRAFANA_ALERT_EMAIL_PLATFORM",
    CITY: "GRAFANA_ALERT_EMAIL_OPERATORS",
}


def contact_points() -> dict[str, Any]:
    """``provisioning/alerting/contact-points.yml``: the mail of the on-call rota, the platform team and the
    operators (Grafana mails through its SMTP settings; an on-call service's address takes mail as pages)."""
    def email(name: str) -> dict[str, Any]:
        return {"orgId": 1, "name": name, "receivers": [{
            "uid": name, "type": "email", "disableResolveMessage": False,
            "settings": {"addresses": f"${CONTACT_VARIABLES[name]}", "singleEmail": True}}]}

    return {"apiVersion": 1, "contactPoints": [email(PAGER), email(PLATFORM), email(CITY)]}


def _route(receiver: str, *matchers: tuple[str, str, str], more: bool = False) -> dict[str, Any]:
    return {"receiver": receiver, "object_matchers": [list(m) for m in matchers], "continue": more}


def notification_policies() -> dict[str, Any]:
    """``provisioning/alerting/notification-policies.yml``: critical alerts to the on-call address (and on), then
    each area to its team; anything else falls to the platform team (the root's receiver)."""
    ours = ("platform", "=", "smartcity")
    return {"apiVersion": 1, "policies": [{
        "orgId": 1, "receiver": PLATFORM, "group_by": ["grafana_folder", "alertname"],
        "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
        "routes": [
            _route(PAGER, ours, ("severity", "=", "critical"), more=True),
            _route(PLATFORM, ours, ("area", "=", "platform")),
            _route(CITY, ours, ("area", "=", "city")),
        ]}]}


def rbac() -> dict[str, Any]:
    """``rbac/rbac.json``: the teams, and the permissions of every folder and data source, by team name."""
    return {
        "teams": [{"name": name, "description": text} for name, text in TEAMS.items()],
        "folders": [{"uid": FOLDER_UID, "title": alerts.FOLDER,
                     "permissions": [{"team": team, "permission": level} for team, level in FOLDER_PERMISSIONS.items()]}],
        "datasources": [{"uid": source["uid"],
                         "permissions": [{"team": team, "permission": level}
                                         for team, level in DATASOURCE_PERMISSIONS.items()]}
                        for source in (datasources.PROMETHEUS, datasources.POSTGRES, datasources.LOGS)],
    }
