"""Zones as a grid over the city's box: ``Z<row><col>``, row 1 the southmost, column 1 the westmost."""

from __future__ import annotations

from smartcity.city.geometry import rectangle
from smartcity.city.model import Boundary, Zone


def grid_zones(box: Boundary, rows: int, cols: int) -> list[Zone]:
    height, width = (box.north - box.south) / rows, (box.east - box.west) / cols
    return [
        Zone(id=f"Z{row}{col}", name=f"Zone {row}-{col}",
             polygon=rectangle(round(box.west + (col - 1) * width, 7), round(box.south + (row - 1) * height, 7),
                               round(box.west + col * width, 7), round(box.south + row * height, 7)))
        for row in range(1, rows + 1) for col in range(1, cols + 1)
    ]
