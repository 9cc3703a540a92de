"""Applies ``rbac/rbac.json`` (:func:`grafana.access.rbac`) to a running Grafana through its HTTP API.

Grafana's file provisioning has no teams nor permissions, so these are API calls, each safe to repeat:

1. every team: found by ``GET /api/teams/search?name=``, else made by ``POST /api/teams``;
2. every folder: made by ``POST /api/folders`` when ``GET /api/folders/<uid>`` does not find it, then its
   permissions set by ``POST /api/folders/<uid>/permissions`` (which replaces them all: only the listed teams,
   and Grafana's admins, keep access; the organisation's Viewer and Editor roles lose theirs);
3. every data source: ``POST /api/access-control/datasources/<uid>/teams/<team id>`` per team. Grafana OSS has no
   data source permissions and answers 403 or 404: that step is then reported as not applied, not as a failure.

The token is a Grafana service account token with the Admin role, from the secret file ``grafana-api-token``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

TOKEN_SECRET = "grafana-api-token"
FOLDER_LEVELS = {"View": 1, "Edit": 2, "Admin": 4}  # Grafana's folder permission numbers
ENTERPRISE_ONLY = (403, 404)


class GrafanaError(Exception):
    """Grafana refused a call: the method, path, status and its answer."""


@dataclass
class Applied:
    """What the run did, step by step, and what Grafana could not do (data source permissions on OSS)."""

    done: list[str] = field(default_factory=list)
    not_applied: list[str] = field(default_factory=list)


class GrafanaAccess:
    def __init__(self, url: str, token: str, transport: httpx.BaseTransport | None = None) -> None:
        self.client = httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"},
                                   timeout=10.0, transport=transport)

    def close(self) -> None:
        self.client.close()

    def call(self, method: str, path: str, body: Any = None, allowed: tuple[int, ...] = (),
             params: dict[str, str] | None = None) -> httpx.Response:
        answer = self.client.request(method, path, json=body, params=params)
        if answer.status_code >= 400 and answer.status_code not in allowed:
            raise GrafanaError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        return answer

    def team_id(self, name: str, applied: Applied) -> int:
        found = self.call("GET", "/api/teams/search", params={"name": name}).json()
        for team in found.get("teams", []):
            if team["name"] == name:
                return int(team["id"])
        team_id = int(self.call("POST", "/api/teams", {"name": name}).json()["teamId"])
        applied.done.append(f"team {name} created")
        return team_id

    def folder(self, folder: dict[str, Any], teams: dict[str, int], applied: Applied) -> None:
        uid = folder["uid"]
        if self.call("GET", f"/api/folders/{uid}", allowed=(404,)).status_code == 404:
            self.call("POST", "/api/folders", {"uid": uid, "title": folder["title"]})
            applied.done.append(f"folder {uid} created")
        items = [{"teamId": teams[p["team"]], "permission": FOLDER_LEVELS[p["permission"]]}
                 for p in folder["permissions"]]
        self.call("POST", f"/api/folders/{uid}/permissions", {"items": items})
        grants = ", ".join(f"{p['team']} {p['permission']}" for p in folder["permissions"])
        applied.done.append(f"folder {uid}: {grants}")

    def datasource(self, source: dict[str, Any], teams: dict[str, int], applied: Applied) -> None:
        uid = source["uid"]
        for grant in source["permissions"]:
            path = f"/api/access-control/datasources/{uid}/teams/{teams[grant['team']]}"
            answer = self.call("POST", path, {"permission": grant["permission"]}, allowed=ENTERPRISE_ONLY)
            if answer.status_code in ENTERPRISE_ONLY:
                applied.not_applied.append(f"data source {uid}: {grant['team']} {grant['permission']} "
                                           f"({answer.status_code}: data source permissions need Grafana Enterprise)")
            else:
                applied.done.append(f"data source {uid}: {grant['team']} {grant['permission']}")


def apply_rbac(url: str, token: str, rbac: dict[str, Any], transport: httpx.BaseTransport | None = None) -> Applied:
    """Make the Grafana at ``url`` hold the teams and permissions of ``rbac``."""
    grafana, applied = GrafanaAccess(url, token, transport), Applied()
    try:
        teams = {team["name"]: grafana.team_id(team["name"], applied) for team in rbac["teams"]}
        for folder in rbac["folders"]:
            grafana.folder(folder, teams, applied)
        for source in rbac["datasources"]:
            grafana.datasource(source, teams, applied)
    except httpx.HTTPError as error:
        raise GrafanaError(f"cannot reach Grafana at {url}: {error}") from None
    finally:
        grafana.close()
    return applied
