"""A few helpers that write Grafana's dashboard JSON: query targets, panels, variables, and the grid layout.

A panel is a plain dict in Grafana's own schema; :func:`dashboard` lays the sections out on the 24-column grid
(a row panel, then its panels left to right, wrapping) and numbers the panels and their queries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from grafana.datasources import POSTGRES, PROMETHEUS

GRID_WIDTH = 24
SCHEMA_VERSION = 39  # Grafana 11; a newer Grafana migrates it on load
Thresholds = Sequence[tuple[float | None, str]]


def promql(expr: str, legend: str = "", *, instant: bool = False) -> dict[str, Any]:
    """A Prometheus query: a range query drawn over time, or an instant one (for tables)."""
    return {"datasource": PROMETHEUS, "editorMode": "code", "expr": expr, "legendFormat": legend or "__auto",
            "range": not instant, "instant": instant}


def sql(raw: str, *, table: bool = False) -> dict[str, Any]:
    """A PostgreSQL query; a time series returns ``time`` (sorted), numbers, and optionally a ``metric`` name."""
    return {"datasource": POSTGRES, "editorMode": "code", "format": "table" if table else "time_series",
            "rawQuery": True, "rawSql": raw.strip()}


def _thresholds(steps: Thresholds) -> dict[str, Any]:
    """Colour steps from a base (green, or the colour of a first step whose value is None) upwards."""
    if not steps or steps[0][0] is not None:
        steps = ((None, "green"), *steps)
    return {"mode": "absolute", "steps": [{"color": color, "value": value} for value, color in steps]}


def panel(kind: str, title: str, targets: Sequence[dict[str, Any]], *, width: int, height: int, description: str = "",
          unit: str | None = None, minimum: float | None = None, maximum: float | None = None,
          thresholds: Thresholds = (), options: dict[str, Any] | None = None, custom: dict[str, Any] | None = None,
          color: dict[str, Any] | None = None, min_interval: str | None = None) -> dict[str, Any]:
    """Any panel: its queries (one datasource), size on the grid, unit, bounds and thresholds."""
    defaults: dict[str, Any] = {"thresholds": _thresholds(thresholds)}
    for key, value in (("unit", unit), ("min", minimum), ("max", maximum), ("custom", custom), ("color", color)):
        if value is not None:
            defaults[key] = value
    result: dict[str, Any] = {
        "type": kind, "title": title, "description": description, "datasource": targets[0]["datasource"],
        "gridPos": {"h": height, "w": width, "x": 0, "y": 0},
        "fieldConfig": {"defaults": defaults, "overrides": []}, "options": options or {}, "targets": list(targets),
    }
    if min_interval:
        result["interval"] = min_interval  # $__interval never goes below it (the 5-minute tables)
    return result


def timeseries(title: str, *targets: dict[str, Any], unit: str | None = None, description: str = "", width: int = 12,
               height: int = 8, minimum: float | None = None, maximum: float | None = None, stacked: bool = False,
               thresholds: Thresholds = (), min_interval: str | None = None) -> dict[str, Any]:
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never", "spanNulls": False,
              "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
              "thresholdsStyle": {"mode": "dashed" if thresholds else "off"}}
    options = {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
               "tooltip": {"mode": "multi", "sort": "desc"}}
    return panel("timeseries", title, targets, width=width, height=height, description=description, unit=unit,
                 minimum=minimum, maximum=maximum, thresholds=thresholds, options=options, custom=custom,
                 min_interval=min_interval)


def stat(title: str, target: dict[str, Any], *, unit: str | None = None, description: str = "", width: int = 4,
         height: int = 4, thresholds: Thresholds = (), min_interval: str | None = None) -> dict[str, Any]:
    """One number: the last value of the query's series, with a sparkline."""
    options = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "value",
               "graphMode": "area", "justifyMode": "auto", "orientation": "auto", "textMode": "auto"}
    return panel("stat", title, [target], width=width, height=height, description=description, unit=unit,
                 thresholds=thresholds, options=options, min_interval=min_interval)


def table(title: str, target: dict[str, Any], *, description: str = "", width: int = 24, height: int = 8,
          thresholds: Thresholds = ()) -> dict[str, Any]:
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    return panel("table", title, [target], width=width, height=height, description=description,
                 thresholds=thresholds, options=options)


def geomap(title: str, target: dict[str, Any], *, color_field: str, description: str = "", width: int = 12,
           height: int = 12, minimum: float = 0, maximum: float = 1) -> dict[str, Any]:
    """Points at the rows' ``lat``/``lon``, coloured by ``color_field`` from green (min) to red (max)."""
    layer = {"type": "markers", "name": title, "tooltip": True,
             "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
             "config": {"showLegend": True,
                        "style": {"size": {"fixed": 6}, "color": {"field": color_field, "fixed": "green"},
                                  "opacity": 0.8, "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"}}}}
    options = {"view": {"id": "fit", "lat": 0, "lon": 0, "zoom": 12},
               "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True},
               "basemap": {"type": "default", "name": "Basemap"}, "layers": [layer], "tooltip": {"mode": "details"}}
    return panel("geomap", title, [target], width=width, height=height, description=description, minimum=minimum,
                 maximum=maximum, options=options, color={"mode": "continuous-GrYlRd"})


def variable(name: str, label: str, query: str, *, datasource: dict[str, str], all_value: str | None = None,
             description: str = "") -> dict[str, Any]:
    """A multi-value query variable with an "All" choice (``all_value``, when given, stands for all)."""
    result = {"name": name, "label": label, "description": description, "type": "query", "datasource": datasource,
              "query": query, "definition": query, "refresh": 2, "sort": 1, "multi": True, "includeAll": True,
              "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [], "hide": 0}
    if all_value is not None:
        result["allValue"] = all_value
    return result


def _number(panels: list[dict[str, Any]]) -> None:
    for number, item in enumerate(panels, start=1):
        item["id"] = number
        for index, target in enumerate(item.get("targets", ())):
            target["refId"] = chr(ord("A") + index)


def _row(title: str, y: int) -> dict[str, Any]:
    return {"type": "row", "title": title, "collapsed": False, "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": y},
            "panels": []}


def layout(sections: Iterable[tuple[str, Sequence[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Each section as a row, then its panels left to right, wrapping at the grid's width."""
    placed: list[dict[str, Any]] = []
    y = 0
    for title, panels in sections:
        placed.append(_row(title, y))
        y, x, line_height = y + 1, 0, 0
        for item in panels:
            width, height = item["gridPos"]["w"], item["gridPos"]["h"]
            if x + width > GRID_WIDTH:
                y, x, line_height = y + line_height, 0, 0
            item["gridPos"].update(x=x, y=y)
            placed.append(item)
            x, line_height = x + width, max(line_height, height)
        y += line_height
    _number(placed)
    return placed


def dashboard(uid: str, title: str, description: str, sections: Iterable[tuple[str, Sequence[dict[str, Any]]]], *,
              variables: Sequence[dict[str, Any]] = (), time_from: str = "now-6h", refresh: str = "1m") -> dict[str, Any]:
    """A whole dashboard, linked to the platform's other dashboards by the ``smartcity`` tag, shown in the local
    time of the configured city (``SMARTCITY_CITY_FILE``) wherever the browser is."""
    from smartcity.city.files import configured_city

    return {
        "uid": uid, "title": title, "description": description, "tags": ["smartcity"],
        "timezone": configured_city().timezone,
        "editable": True, "graphTooltip": 1, "schemaVersion": SCHEMA_VERSION, "version": 1, "refresh": refresh,
        "time": {"from": time_from, "to": "now"}, "timepicker": {}, "fiscalYearStartMonth": 0, "liveNow": False,
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["smartcity"], "title": "Smart city", "asDropdown": False,
                   "includeVars": False, "keepTime": True, "icon": "external link", "targetBlank": False}],
        "templating": {"list": list(variables)},
        "panels": layout(sections),
    }
