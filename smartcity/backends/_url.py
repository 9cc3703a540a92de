"""What every backend module reads out of its URL, and the fail-fast rule for servers that do not answer."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from smartcity.errors import ConfigurationError
from smartcity.settings import Settings, get_settings

# A server that has not answered within this many seconds is taken as unreachable: fail fast, never hang.
CONNECT_TIMEOUT_S = 5.0


def local_path(url: str, setting: str) -> Path:
    """The absolute folder or file of an embedded backend's URL (``file:///folder``, ``sqlite:///file.db``).

    Extra leading slashes are tolerated (``sqlite:////abs/file.db`` is ``/abs/file.db``); a relative path is not,
    since it would depend on the working directory.
    """
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            setting, f"{url!r} names the host {parts.netloc!r}; an embedded backend takes an absolute path: "
            f"{parts.scheme}:///absolute/path"
        )
    if not parts.path.strip("/"):
        raise ConfigurationError(setting, f"{url!r} has no path; expected {parts.scheme}:///absolute/path")
    return Path("/" + parts.path.lstrip("/"))


def query_options(url: str) -> dict[str, str]:
    """The ``?name=value`` options of a URL."""
    return dict(parse_qsl(urlsplit(url).query))


def host_port(url: str, setting: str, default_port: int) -> tuple[str, int]:
    """The one ``host:port`` of a server URL."""
    parts = urlsplit(url)
    if not parts.hostname:
        raise ConfigurationError(setting, f"{url!r} names no host; expected {parts.scheme}://host:port/...")
    try:
        port = parts.port or default_port
    except ValueError as error:
        raise ConfigurationError(setting, f"{url!r}: {error}") from None
    return parts.hostname, port


def unreachable(setting: str, what: str, where: str, error: BaseException) -> ConfigurationError:
    """The error for a server that did not answer; names the setting, the server and the cause."""
    return ConfigurationError(
        setting, f"cannot reach {what} at {where} within {CONNECT_TIMEOUT_S:g} s: {str(error).strip() or type(error).__name__}"
    )


def flag(options: dict[str, str], name: str, setting: str) -> bool:
    """A boolean ``?name=true|false`` URL option (absent is false)."""
    value = options.get(name, "false").lower()
    if value not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigurationError(setting, f"option {name}={value!r} is not true or false")
    return value in ("true", "1", "yes")


def tls_ca_file(settings: Settings | None) -> str | None:
    """The CA bundle a TLS client verifies the server against (``SMARTCITY_TLS_CA_FILE``); None: the system's CAs."""
    ca_file = (settings or get_settings()).tls_ca_file
    return str(ca_file) if ca_file is not None else None
