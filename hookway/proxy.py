"""The client's address and scheme behind a trusted reverse proxy, whatever the server.

uvicorn and gunicorn believe ``X-Forwarded-For`` / ``X-Forwarded-Proto`` from the
addresses in FORWARDED_ALLOW_IPS; hypercorn, daphne and granian do not (each has its own
switch, or none). Hookway applies the same rule itself, at the edge, before anything
reads the request, so the address it stores with a webhook (``Event.client_ip``), the
scheme Django sees (the admin's CSRF check) and any check of the client's address are
the same under every server. Applying it after uvicorn or gunicorn already did changes
nothing: the address they leave is untrusted (or the chain's first), a fixed point.

The rule: headers are believed only when the TCP peer is a trusted proxy. The client is
then the right-most address in ``X-Forwarded-For`` that is not itself a trusted proxy
(each proxy appends the address it saw, so everything left of the first untrusted one
was written by the client and proves nothing); if every address is trusted, the
left-most. An entry that is not an IP address ends the walk and the last verified hop
is kept: Hookway never records a value it could not check.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Scope = dict[str, Any]


class TrustedProxies:
    """FORWARDED_ALLOW_IPS parsed: addresses and networks, or every peer (``*``)."""

    def __init__(self, entries: Iterable[str]) -> None:
        entries = [e.strip() for e in entries if e.strip()]
        self.everyone = entries == ["*"]
        self.networks: tuple[IPNetwork, ...] = (
            () if self.everyone else tuple(ipaddress.ip_network(e) for e in entries)
        )

    def __contains__(self, address: str) -> bool:
        ip = parse_ip(address)
        if ip is None:
            return False
        if self.everyone:
            return True
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
        return any(ip in network for network in self.networks)


# Every request parses its peer's address at least twice (the proxy check, the stored
# client IP) and senders come from few addresses: ipaddress's parser, in Python, was
# ~5 % of a webhook's time on the event loop. Bounded, so varied X-Forwarded-For
# values only churn it.
@lru_cache(maxsize=1024)
def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``value`` as an IP address (``[v6]`` brackets allowed), or None if it is not one."""
    value = value.strip()
    if value.startswith("[") and value.endswith("]"):
        value = value[1:-1]
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        return None  # fe80::1%eth0 names an interface of the sender's machine: not storable
    return ip


@lru_cache(maxsize=8)
def trusted_proxies(entries: tuple[str, ...]) -> TrustedProxies:
    return TrustedProxies(entries)


def _header_values(scope: Scope, name: bytes) -> list[str]:
    # Several header lines of one name are one comma-separated list (RFC 9110, 5.3).
    values: list[str] = []
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            values.extend(part.strip() for part in value.decode("latin-1").split(","))
    return [v for v in values if v]


def forwarded_client(peer: str, chain: Sequence[str], trusted: TrustedProxies) -> str:
    """The client's address given the TCP ``peer`` and an ``X-Forwarded-For`` ``chain``
    (left to right), by the rule in this module's docstring."""
    if peer not in trusted:
        return peer
    client = peer
    for hop in reversed(chain):
        ip = parse_ip(hop)
        if ip is None:
            break
        client = str(ip)
        if client not in trusted:
            break
    return client


def apply(scope: Scope, trusted: TrustedProxies) -> None:
    """Rewrite ``scope["client"]`` and ``scope["scheme"]`` from the forwarding headers
    when the peer is a trusted proxy; leave the scope alone otherwise."""
    client = scope.get("client")
    if not client or client[0] not in trusted:
        return
    chain = _header_values(scope, b"x-forwarded-for")
    if chain:
        address = forwarded_client(client[0], chain, trusted)
        if address != client[0]:
            scope["client"] = (address, 0)
    protos = _header_values(scope, b"x-forwarded-proto")
    if protos and protos[-1].lower() in {"http", "https"}:
        # The nearest proxy's value: the one that terminated the client's connection
        # appends it last (or alone).
        scope["scheme"] = protos[-1].lower()


def client_ip(scope: Mapping[str, Any]) -> str | None:
    """The client's IP address as the scope gives it (after ``apply``), or None when the
    server gives none or not an IP address (a Unix socket)."""
    client = scope.get("client")
    if not client:
        return None
    return _normalized_ip(str(client[0]))


@lru_cache(maxsize=1024)
def _normalized_ip(value: str) -> str | None:
    ip = parse_ip(value)
    return None if ip is None else str(ip)
