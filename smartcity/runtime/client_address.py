"""The client address of a request that may have come through trusted proxies (a load balancer, an ingress).

Behind a proxy every caller's connection comes from the proxy's address. When, and only when, the direct peer is
inside one of ``SMARTCITY_GATEWAY_TRUSTED_PROXIES`` (CIDRs), the client is read from the hops the proxies wrote:
``X-Forwarded-For`` (every such header, left to right), or, without one, the ``for=`` of ``Forwarded`` (RFC 7239).
Walking them from the right, the first address that is not itself a trusted proxy is the client: whatever a caller
wrote further left is never reached, so it cannot choose its rate-limit bucket. From any other peer the headers are
ignored. A hop that is no address (garbage, ``unknown``, an obfuscated name) ends the walk at the last address met:
a malformed header is ignored, never an error.

A proxy that writes only ``Forwarded`` must drop a caller's ``X-Forwarded-For``, which is read first.
"""

from __future__ import annotations

import ipaddress
from typing import Iterable, Mapping, Sequence

from smartcity.errors import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
SETTING = "gateway_trusted_proxies"


class TrustedProxies:
    """The networks whose connections may say, in forwarding headers, whom they forward."""

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self.networks = tuple(networks)

    @classmethod
    def parse(cls, text: str) -> TrustedProxies:
        """From comma-separated CIDRs (or single addresses); one that is neither is a ConfigurationError naming it."""
        networks = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigurationError(SETTING, f"{item!r} is not a CIDR such as 10.0.0.0/8 or fd00::/8") from None
        return cls(networks)

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str, headers: Mapping[str, str] | None) -> str:
        """The client's address: ``peer`` unless it is a trusted proxy, else the nearest untrusted hop its headers
        name (or, when every hop is trusted, the farthest)."""
        nearest = address_of(peer)
        if not self.networks or nearest is None or not self.trusts(nearest) or headers is None:
            return peer
        for hop in reversed(forwarded_hops(headers)):
            address = address_of(hop)
            if address is None:
                break
            nearest = address
            if not self.trusts(address):
                break
        return str(nearest)


def forwarded_hops(headers: Mapping[str, str]) -> list[str]:
    """The hops of ``X-Forwarded-For`` or, without it, the ``for=`` values of ``Forwarded``, left to right."""
    values = header_values(headers, "x-forwarded-for")
    if values:
        return [hop.strip() for value in values for hop in value.split(",")]
    return [node for value in header_values(headers, "forwarded") for node in forwarded_for(value)]


def header_values(headers: Mapping[str, str], name: str) -> list[str]:
    getlist = getattr(headers, "getlist", None)  # Starlette's headers: every header of the name, in order
    if getlist is not None:
        return list(getlist(name))
    value = headers.get(name)
    return [value] if value is not None else []


def forwarded_for(value: str) -> Iterable[str]:
    """The ``for=`` node of each element of a ``Forwarded`` value; an element without one is an unknown hop."""
    for element in value.split(","):
        pairs = (pair.partition("=") for pair in element.split(";"))
        nodes = [node.strip().strip('"') for key, _, node in pairs if key.strip().lower() == "for"]
        yield nodes[0] if nodes else "unknown"


def address_of(node: str) -> Address | None:
    """The IP address of a hop: ``1.2.3.4``, ``1.2.3.4:port``, ``2001:db8::1``, ``[2001:db8::1]:port``; else None."""
    node = node.strip()
    if node.startswith("["):
        node = node[1:].partition("]")[0]
    elif node.count(":") == 1:  # IPv4 with a port
        node = node.partition(":")[0]
    try:
        address = ipaddress.ip_address(node)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:10.0.0.1 from a dual-stack socket is 10.0.0.1
    return mapped or address
