"""Where ``/async-function`` may send its result: a callback URL's host must be on the allowlist
(``SMARTCITY_CALLBACK_ALLOWED_HOSTS``) and every address it resolves to must be public, so that a caller cannot
make the gateway POST to itself, to the cluster's private network or to a cloud metadata address (169.254.169.254).
``SMARTCITY_CALLBACK_ALLOW_PRIVATE`` lets a local setup call back to loopback and private hosts it allowlists.

:func:`resolve_callback` resolves once and returns the URL pinned to the checked address, so that the POST goes
where the check looked, whatever a second DNS answer would say."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}
# Kinds of address refused, in this order: the first that fits names the refusal (::1 is loopback before it is
# reserved; 0.0.0.0 is unspecified before it is private).
REFUSED_KINDS = ("unspecified", "loopback", "link_local", "multicast", "reserved", "private")
# Kinds a local setup may call back to with callback_allow_private.
PRIVATE = ("loopback", "private")


@dataclass(frozen=True)
class CallbackTarget:
    """A checked callback: ``url`` pinned to ``address``, sent with ``host`` as its Host header (and TLS name)."""

    url: str
    address: str
    host: str
    hostname: str


def check_callback(url: str, allowlist: str, allow_private: bool = False) -> str | None:
    """Why ``url`` may not be called back (after resolving its host), or None if it may."""
    target = resolve_callback(url, allowlist, allow_private)
    return target if isinstance(target, str) else None


def resolve_callback(url: str, allowlist: str, allow_private: bool = False) -> CallbackTarget | str:
    """``url`` pinned to its checked address, or why it is refused. Blocks on DNS: from async code, run it in a
    thread. ``allowlist`` is the setting: comma-separated host names, IP addresses or host:port."""
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return f"{url!r} is not an absolute http(s) URL"
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return f"{url!r} has an invalid port"
    hostname = parts.hostname.rstrip(".")
    if not allowed(hostname, port, allowlist):
        return f"host {hostname}:{port} is not on the callback allowlist (SMARTCITY_CALLBACK_ALLOWED_HOSTS)"
    addresses = resolve(hostname, port)
    if not addresses:
        return f"host {hostname!r} does not resolve"
    for address in addresses:
        kind = refused_kind(address, allow_private)
        if kind is not None:
            return f"host {hostname!r} is at {address}: {kind.replace('_', '-')} addresses are refused"
    address = addresses[0]
    literal = f"[{address}]" if address.version == 6 else str(address)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (f"{userinfo}@" if userinfo else "") + f"{literal}:{port}"
    host = parts.netloc.rpartition("@")[2]
    return CallbackTarget(parts._replace(netloc=netloc).geturl(), str(address), host, hostname)


def allowed(hostname: str, port: int, allowlist: str) -> bool:
    """Whether ``hostname:port`` is on ``allowlist``: an entry without a port allows every port of its host."""
    host = normal_host(hostname)
    for entry in filter(None, (entry.strip() for entry in allowlist.split(","))):
        entry_host, entry_port = split_entry(entry)
        if normal_host(entry_host) == host and entry_port in (None, port):
            return True
    return False


def split_entry(entry: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address, as (host, port or None)."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        return host, entry_port(rest[1:]) if rest.startswith(":") else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, entry_port(port)
    return entry, None


def entry_port(text: str) -> int:
    """An allowlist entry's port; one that is not a number matches no port (-1)."""
    return int(text) if text.strip().isdigit() else -1


def normal_host(host: str) -> str:
    """A host name lower-cased without its trailing dot; an IP address in its canonical form."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def resolve(hostname: str, port: int) -> list[IPAddress]:
    """The addresses of ``hostname`` (a literal IP is its own, without DNS); none if it does not resolve."""
    try:
        return [ipaddress.ip_address(hostname)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def refused_kind(address: IPAddress, allow_private: bool = False) -> str | None:
    """The kind of address that makes ``address`` refused (``loopback``, ``link_local``...), or None if public.
    An IPv4-mapped IPv6 address is judged as the IPv4 address it carries."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for kind in REFUSED_KINDS:
        if getattr(address, f"is_{kind}"):
            return None if allow_private and kind in PRIVATE else kind
    return None if address.is_global else "non-global"
