"""Grafana RBAC and alert routing as code (grafana/access.py, grafana/apply_rbac.py).

Grafana cannot run here (docs/dashboards.md), so the structure is checked instead: every alert rule's labels are
routed by a notification policy (matched as Grafana's Alertmanager matches them) to an existing contact point, every
folder and data source has permissions, every team referenced exists. ``smartcity grafana apply-rbac`` is tested
against a fake Grafana on loopback: a mock that checks the shapes of the HTTP requests, not Grafana's behaviour.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from grafana import access, alerts, datasources
from grafana.apply_rbac import TOKEN_SECRET
from grafana.build import dashboards_provisioning
from smartcity.cli import app
from smartcity.settings import get_settings


def matches(labels: dict[str, str], matcher: list[str]) -> bool:
    name, operator, value = matcher
    found = labels.get(name, "")
    return {"=": found == value, "!=": found != value, "=~": bool(re.fullmatch(value, found)),
            "!~": not re.fullmatch(value, found)}[operator]


def receivers_of(labels: dict[str, str], policy: dict[str, Any]) -> list[str]:
    """The contact points an alert reaches: routes in order, the first match ends it unless it says continue; no
    match: the policy's own receiver (Alertmanager's routing tree, one level deep as ours is)."""
    reached = []
    for route in policy.get("routes", []):
        if all(matches(labels, m) for m in route["object_matchers"]):
            reached.append(route["receiver"])
            if not route["continue"]:
                return reached
    return reached or [policy["receiver"]]


def rules() -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every rule and the labels its alerts carry (Grafana adds alertname and grafana_folder)."""
    return [(rule, {**rule["labels"], "alertname": rule["title"], "grafana_folder": group["folder"]})
            for group in alerts.provisioning()["groups"] for rule in group["rules"]]


def test_every_alert_rule_is_routed_by_a_policy_to_existing_contact_points():
    [policy] = access.notification_policies()["policies"]
    contact_points = {point["name"] for point in access.contact_points()["contactPoints"]}
    assert {policy["receiver"], *(route["receiver"] for route in policy["routes"])} <= contact_points
    assert len(rules()) >= 7
    for rule, labels in rules():
        reached = receivers_of(labels, policy)
        specific = [route["receiver"] for route in policy["routes"]
                    if all(matches(labels, m) for m in route["object_matchers"]) and not route["continue"]]
        assert specific, f"rule {rule['uid']} is matched by no team's route, only by the default"
        assert set(reached) <= contact_points
        assert (access.PAGER in reached) == (labels["severity"] == "critical"), rule["uid"]
        assert ({"platform": access.PLATFORM, "city": access.CITY}[labels["area"]]) in reached, rule["uid"]


def test_the_routing_check_catches_a_rule_no_route_matches():
    [policy] = access.notification_policies()["policies"]
    assert receivers_of({"platform": "smartcity", "severity": "warning", "area": "elsewhere"}, policy) == [policy["receiver"]]
    assert receivers_of({"platform": "smartcity", "severity": "critical", "area": "city"}, policy) == [access.PAGER,
                                                                                                       access.CITY]


def test_contact_points_take_their_addresses_from_the_environment():
    for point in access.contact_points()["contactPoints"]:
        [receiver] = point["receivers"]
        assert receiver["settings"]["addresses"] == f"${access.CONTACT_VARIABLES[point['name']]}"


def test_every_folder_and_data_source_has_permissions_for_existing_teams():
    rbac = access.rbac()
    teams = {team["name"] for team in rbac["teams"]}
    assert teams == {access.OPERATORS, access.ANALYSTS, access.ADMINS}
    folders = {folder["uid"]: folder for folder in rbac["folders"]}
    used = {provider["folderUid"] for provider in dashboards_provisioning()["providers"]}
    assert used <= set(folders)
    assert {group["folder"] for group in alerts.provisioning()["groups"]} <= {f["title"] for f in folders.values()}
    provisioned = {source["uid"] for source in datasources.provisioning()["datasources"]}
    assert provisioned <= {source["uid"] for source in rbac["datasources"]}
    for item in [*rbac["folders"], *rbac["datasources"]]:
        assert item["permissions"] and {grant["team"] for grant in item["permissions"]} <= teams
    levels = {grant["team"]: grant["permission"] for grant in folders[access.FOLDER_UID]["permissions"]}
    assert levels == {access.OPERATORS: "View", access.ANALYSTS: "Edit", access.ADMINS: "Admin"}


# --- smartcity grafana apply-rbac, against a fake Grafana on loopback (a mock: Grafana cannot run here) ----------


class FakeGrafana(BaseHTTPRequestHandler):
    """Answers the calls apply-rbac makes as Grafana documents them; records each (method, path, body, auth)."""

    calls: list[tuple[str, str, Any, str]]
    teams: dict[str, int]
    folders: set[str]
    datasource_status: int

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.calls.append((method, self.path, body, self.headers.get("authorization", "")))
        path = self.path.split("?")[0]
        if method == "GET" and path == "/api/teams/search":
            name = self.path.split("name=", 1)[1]
            found = [{"id": i, "name": n} for n, i in self.teams.items() if n == name]
            return self._answer(200, {"totalCount": len(found), "teams": found})
        if method == "POST" and path == "/api/teams":
            self.teams[body["name"]] = len(self.teams) + 1
            return self._answer(200, {"message": "Team created", "teamId": self.teams[body["name"]]})
        if method == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            return self._answer(200, {"uid": uid}) if uid in self.folders else self._answer(404, {"message": "not found"})
        if method == "POST" and path == "/api/folders":
            self.folders.add(body["uid"])
            return self._answer(200, {"uid": body["uid"], "title": body["title"]})
        if method == "POST" and path.endswith("/permissions"):
            return self._answer(200, {"message": "Folder permissions updated"})
        if method == "POST" and path.startswith("/api/access-control/datasources/"):
            return self._answer(self.datasource_status, {"message": "Permission updated"})
        return self._answer(500, {"message": f"unexpected {method} {self.path}"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


@pytest.fixture
def grafana(tmp_path, monkeypatch):
    handler = type("Handler", (FakeGrafana,), {"calls": [], "teams": {}, "folders": set(), "datasource_status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("SMARTCITY_SECRETS_DIR", str(tmp_path))
    get_settings.cache_clear()
    (tmp_path / TOKEN_SECRET).write_text("glsa_test-token\n")
    yield handler, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    get_settings.cache_clear()


def apply(url: str):
    return CliRunner().invoke(app, ["grafana", "apply-rbac", "--url", url])


def test_apply_rbac_creates_teams_then_folder_and_data_source_permissions(grafana):
    handler, url = grafana
    result = apply(url)
    assert result.exit_code == 0, result.output
    assert all(auth == "Bearer glsa_test-token" for *_, auth in handler.calls)
    created = [body["name"] for method, path, body, _ in handler.calls if (method, path) == ("POST", "/api/teams")]
    assert created == [access.OPERATORS, access.ANALYSTS, access.ADMINS]
    assert ("POST", "/api/folders", {"uid": "smartcity", "title": alerts.FOLDER}) in [c[:3] for c in handler.calls]
    [permissions] = [body for method, path, body, _ in handler.calls if path == "/api/folders/smartcity/permissions"]
    ids = handler.teams
    assert permissions == {"items": [{"teamId": ids[access.OPERATORS], "permission": 1},
                                     {"teamId": ids[access.ANALYSTS], "permission": 2},
                                     {"teamId": ids[access.ADMINS], "permission": 4}]}
    grants = {(path, body["permission"]) for method, path, body, _ in handler.calls if "access-control" in path}
    assert (f"/api/access-control/datasources/{datasources.PROMETHEUS['uid']}/teams/{ids[access.OPERATORS]}",
            "Query") in grants and len(grants) == 9

    handler.calls.clear()  # a second run finds the teams and the folder: it creates nothing
    assert apply(url).exit_code == 0
    assert not [c for c in handler.calls if c[1] in ("/api/teams", "/api/folders")]


def test_apply_rbac_on_grafana_oss_reports_data_source_permissions_not_applied(grafana):
    handler, url = grafana
    handler.datasource_status = 404
    result = apply(url)
    assert result.exit_code == 0 and result.output.count("not applied") == 9
    assert "need Grafana Enterprise" in result.output


def test_apply_rbac_errors(grafana, tmp_path):
    handler, url = grafana
    handler.datasource_status = 500
    result = apply(url)
    assert result.exit_code == 1 and "/api/access-control/datasources/" in result.output and "500" in result.output
    refused = apply("ftp://127.0.0.1")
    assert refused.exit_code == 2 and "not an http(s) address" in refused.output
    (tmp_path / TOKEN_SECRET).unlink()
    missing = apply(url)
    assert missing.exit_code == 2 and TOKEN_SECRET in missing.output
