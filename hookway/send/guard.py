"""The SSRF guard: a destination may only be reached at a public address.

The check runs on the *resolved* addresses, right before connecting, and the request is
then sent to the vetted address itself (with the original Host header and TLS server
name), so a DNS answer can't change between the check and the connection (DNS
rebinding). Loopback, private, link-local, CGNAT, multicast, reserved and unspecified
addresses are refused unless HOOKWAY_ALLOW_PRIVATE_DESTINATIONS is on or the address or
host is in HOOKWAY_PRIVATE_DESTINATION_ALLOWLIST.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from hookway.send.errors import DestinationRefused, DnsFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses it resolves to (tests inject a slow or failing one)
Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (getaddrinfo, in the loop's thread pool). It has
    no timeout of its own: the sender's deadline over the whole attempt bounds it."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DnsFailed(f"can't resolve {host}: {exc}") from None
    return [str(info[4][0]).split("%")[0] for info in infos]


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return is_public(ip.ipv4_mapped)
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Guard:
    allow_private: bool = False
    allowlist: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_settings(cls) -> Guard:
        from django.conf import settings

        return cls(
            allow_private=settings.HOOKWAY.allow_private_destinations,
            allowlist=tuple(settings.HOOKWAY.private_destination_allowlist),
        )

    def _allowed(self, host: str, ip: IPAddress) -> bool:
        if self.allow_private or is_public(ip):
            return True
        for entry in self.allowlist:
            if entry.lower() == host.lower():
                return True
            try:
                if ip in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue
        return False

    async def resolve(self, host: str, port: int) -> IPAddress:
        """Return the first allowed address ``host`` resolves to.

        Raises DestinationRefused when every address is refused, DnsFailed when the
        name doesn't resolve.
        """
        try:
            addresses: Sequence[IPAddress] = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            addresses = []
            for raw in await self.resolver(host, port):
                ip = ipaddress.ip_address(raw)
                if ip not in addresses:
                    addresses.append(ip)
            if not addresses:
                raise DnsFailed(f"can't resolve {host}: no addresses") from None
        for ip in addresses:
            if self._allowed(host, ip):
                return ip
        shown = ", ".join(str(ip) for ip in addresses)
        raise DestinationRefused(
            f"refused: {host} resolves to {shown}, a non-public address; set "
            "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS=true or add it to "
            "HOOKWAY_PRIVATE_DESTINATION_ALLOWLIST to allow it"
        )
