"""Who may read the metrics: a client whose address is in HOOKWAY_METRICS_ALLOWLIST
(this machine by default), or one sending ``Authorization: Bearer`` with
HOOKWAY_METRICS_TOKEN. Everyone else gets 403 and no data.

The address is the one the server saw: behind a proxy on this machine that is the
proxy's (loopback), unless the server believes the proxy's X-Forwarded-For
(FORWARDED_ALLOW_IPS), so a proxy must not pass /metrics on without it
(docs/operations.md, "Metrics").
"""

from __future__ import annotations

import functools
import hmac
import ipaddress

from hookway import conf

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

REFUSED = (
    "metrics are served to the addresses in HOOKWAY_METRICS_ALLOWLIST (this machine by "
    "default) and to requests with 'Authorization: Bearer' and HOOKWAY_METRICS_TOKEN"
)
WRONG_TOKEN = "the bearer token is not HOOKWAY_METRICS_TOKEN"


@functools.lru_cache(maxsize=8)
def _networks(allowlist: tuple[str, ...]) -> tuple[IPNetwork, ...] | None:
    """The allowlist's networks; None for "*" (anyone)."""
    if allowlist == ("*",):
        return None
    return tuple(ipaddress.ip_network(item) for item in allowlist)


def _allowed_address(client: str | None, allowlist: list[str]) -> bool:
    networks = _networks(tuple(allowlist))
    if networks is None:
        return True
    if not client:
        return False
    try:
        address = ipaddress.ip_address(client.split("%", 1)[0])
    except ValueError:
        return False  # a Unix socket path or anything that is not an address
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in networks)


def refusal(client: str | None, authorization: str | None) -> str | None:
    """Why this request may not read the metrics, or None if it may. ``client`` is the
    peer's address as the server saw it; ``authorization`` the Authorization header.
    A token that is sent must be the right one, from any address."""
    settings = conf.get()
    token = settings.metrics_token
    if token and authorization:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.encode()
        ):
            return None
        return WRONG_TOKEN
    if _allowed_address(client, settings.metrics_allowlist):
        return None
    return REFUSED
