"""City files: load and save a :class:`CityDefinition` as JSON, and the configured one (``SMARTCITY_CITY_FILE``)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from pydantic import ValidationError

from smartcity.city.model import CityDefinition
from smartcity.settings import get_settings

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CITY_FILE = DATA_DIR / "cologne-nippes.json"
# A (lon, lat) pair as json.dumps indents it, kept on one line in the file.
_POINT = re.compile(r"\[\s*(-?[0-9.eE+-]+),\s*(-?[0-9.eE+-]+)\s*\]")


class CityFileError(ValueError):
    """A city file that cannot be read or is not a valid city; the message names the file and each bad field."""


def _field_reasons(error: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in item['loc']) or '<city>'}: {item['msg']}"
                     for item in error.errors(include_url=False))


def parse_city(text: str, source: Path | str = "<city>") -> CityDefinition:
    try:
        return CityDefinition.model_validate_json(text)
    except ValidationError as error:
        raise CityFileError(f"{source}: {_field_reasons(error)}") from None


def read_city(path: Path) -> CityDefinition:
    """The city of ``path`` (not cached); its GTFS path is resolved against the file's folder."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CityFileError(f"{path}: cannot read the city file ({error.strerror or error})") from None
    city = parse_city(text, path)
    city._file = Path(path).resolve()
    return city


@lru_cache(maxsize=8)
def load_city_file(path: str) -> CityDefinition:
    """:func:`read_city`, cached by path: every caller of one process shares the city."""
    return read_city(Path(path))


def save_city(city: CityDefinition, path: Path) -> Path:
    """Write ``city`` as indented JSON (stable: the same city gives the same bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(city.model_dump(mode="json"), indent=1, ensure_ascii=False)
    path.write_text(_POINT.sub(lambda m: f"[{m[1]}, {m[2]}]", text) + "\n", encoding="utf-8")
    return path


def configured_city_file() -> Path:
    return get_settings().city_file


_last_configured: tuple[object, CityDefinition] | None = None  # (the settings, their city)


def configured_city() -> CityDefinition:
    """The city ``SMARTCITY_CITY_FILE`` names (the bundled Cologne district by default), read once per file.

    Looked up once per settings object (they are frozen; new settings, a new look-up): the event models'
    validators ask for it once per event."""
    global _last_configured
    settings = get_settings()
    last = _last_configured
    if last is None or last[0] is not settings:
        last = _last_configured = (settings, load_city_file(str(settings.city_file)))
    return last[1]
