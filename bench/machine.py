"""What every bench prints beside its figures: how busy the machine was while it measured."""

from __future__ import annotations

import os


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, e.g. ``0.80 0.92 0.95``."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
