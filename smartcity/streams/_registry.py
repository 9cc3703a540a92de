"""Finding the stream descriptors: the modules of this package, then the ``*.py`` files of ``SMARTCITY_STREAMS_DIR``.

A descriptor module holds ``STREAM``, a :class:`smartcity.streams.Stream`; modules whose name starts with ``_``
are the package's own code. The platform's first streams come in the order of :data:`TOPICS`, any other after
them by topic. Two descriptors with one topic, CloudEvent type, table or NGSI ``type`` are a
:class:`ConfigurationError` naming both files.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType

from smartcity.errors import ConfigurationError
from smartcity.settings import get_settings
from smartcity.streams import Stream

# The platform's first eight streams, in the order the registry gives them (every listing, table and topic list
# follows it); they are also the streams the simulator publishes by default. Any other stream (a descriptor of this
# package added since, such as bike-share-vehicles, or one of SMARTCITY_STREAMS_DIR) comes after them by topic.
TOPICS = (
    "traffic-sensors",
    "public-transport",
    "taxi-vtc",
    "parking",
    "bike-share",
    "incidents",
    "weather",
    "air-quality",
)
PACKAGE = "smartcity.streams"
USER_PACKAGE = "smartcity_user_streams"
SETTING = "SMARTCITY_STREAMS_DIR"


def package_modules() -> list[ModuleType]:
    """The descriptor modules of this package."""
    folder = Path(__file__).resolve().parent
    return [importlib.import_module(f"{PACKAGE}.{info.name}") for info in pkgutil.iter_modules([str(folder)])
            if not info.name.startswith("_")]


def folder_modules(folder: Path) -> list[ModuleType]:
    """The descriptor modules of a user folder: each ``*.py`` file (not ``_*``), imported under its own name."""
    if not folder.is_dir():
        raise ConfigurationError(SETTING, f"{folder} is not a folder")
    return [load_file(path) for path in sorted(folder.glob("*.py")) if not path.name.startswith("_")]


def load_file(path: Path) -> ModuleType:
    """Import one descriptor file under its own name; ConfigurationError naming it when it fails."""
    name = f"{USER_PACKAGE}.{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:
        del sys.modules[name]
        raise ConfigurationError(SETTING, f"{path}: {type(error).__name__}: {error}") from error
    return module


def descriptor_of(module: ModuleType) -> Stream:
    stream = getattr(module, "STREAM", None)
    if not isinstance(stream, Stream):
        raise ConfigurationError(SETTING if module.__name__.startswith(USER_PACKAGE) else PACKAGE,
                                 f"{module.__file__} defines no STREAM = Stream(...)")
    return stream


def _check_unique(pairs: list[tuple[Stream, str]]) -> None:
    for what, value_of in (("topic", lambda s: s.topic), ("CloudEvent type", lambda s: s.ce_type),
                           ("table", lambda s: s.table), ("NGSI type", _ngsi_type)):
        seen: dict[str, str] = {}
        for stream, where in pairs:
            value = value_of(stream)
            if value is not None and value in seen:
                raise ConfigurationError(SETTING, f"{what} {value!r} is declared twice: {seen[value]} and {where}")
            if value is not None:
                seen[value] = where


def _ngsi_type(stream: Stream) -> str | None:
    field = stream.model.model_fields.get("type")
    return field.default if field is not None and isinstance(field.default, str) else None


def _order(stream: Stream) -> tuple[int, str]:
    return (TOPICS.index(stream.topic) if stream.topic in TOPICS else len(TOPICS), stream.topic)


def discover(streams_dir: Path | None) -> tuple[dict[str, Stream], set[str]]:
    """Every stream: the package's descriptors and those of ``streams_dir`` (if any), by topic; and the topics of
    the latter."""
    own = package_modules()
    modules = own + (folder_modules(streams_dir) if streams_dir else [])
    pairs = [(descriptor_of(module), str(module.__file__)) for module in modules]
    _check_unique(pairs)
    streams = {stream.topic: stream for stream, _ in sorted(pairs, key=lambda pair: _order(pair[0]))}
    return streams, {stream.topic for stream, _ in pairs[len(own):]}


class Registry(Mapping[str, Stream]):
    """Every stream of this process's settings (``SMARTCITY_STREAMS_DIR``) by topic, found on first use.

    Found lazily because a descriptor module imports its model from ``smartcity.events``, whose ``STREAMS`` this is:
    importing a descriptor first must not look for descriptors while that one is half-imported."""

    def __init__(self) -> None:
        self._streams: dict[str, Stream] | None = None
        self._by_type: dict[str, Stream] = {}
        self._from_folder: set[str] = set()
        self._finding = False

    def _all(self) -> dict[str, Stream]:
        if self._streams is None:
            if self._finding:  # else a descriptor reading the streams while imported would recurse without end
                raise ConfigurationError(SETTING, "a stream descriptor uses smartcity.events.STREAMS while it is "
                                         "being imported; use it in functions only")
            self._finding = True
            try:
                self._streams, self._from_folder = discover(get_settings().streams_dir)
            finally:
                self._finding = False
            self._by_type = {stream.ce_type: stream for stream in self._streams.values()}
        return self._streams

    def __getitem__(self, topic: str) -> Stream:
        return self._all()[topic]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def from_folder(self) -> list[Stream]:
        """The streams of ``SMARTCITY_STREAMS_DIR`` (not the package's), in registry order."""
        return [stream for topic, stream in self._all().items() if topic in self._from_folder]

    def by_type(self) -> Mapping[str, Stream]:
        """The same streams by CloudEvent type."""
        self._all()
        return self._by_type
