"""The SSRF guard: a destination may only be reached at a public address.

The check runs on the *resolved* addresses, right before connecting, and the request is
then sent to the vetted address itself (with the original Host header and TLS server
name), so a DNS answer can't change between the check and the connection (DNS
rebinding). Loopback, private, link-local, CGNAT, multicast, reserved and unspecified
addresses are refused unless HOOKWAY_ALLOW_PRIVATE_DESTINATIONS is on or the address or
host is in HOOKWAY_PRIVATE_DESTINATION_ALLOWLIST.

An IPv6 address can carry an IPv4 address that the host's own stack, a NAT64 gateway or
a tunnel relay then reaches: IPv4-mapped (``::ffff:0:0/96``), IPv4-translated
(``::ffff:0:0:0/96``), IPv4-compatible (``::/96``), NAT64 (``64:ff9b::/96``), 6to4
(``2002::/16``), Teredo (``2001::/32``, server and client) and ISATAP interface ids
(``…:0:5efe:a.b.c.d``, ``…:200:5efe:a.b.c.d``). Such an address is public only if every
IPv4 address it carries is; local-use NAT64 (``64:ff9b:1::/48``) leads wherever the
site's translator says and is never public. The special-purpose ranges are listed here
rather than taken from ``ipaddress``'s ``is_global`` alone, whose answer for these
ranges changes between Python versions.
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


_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# IANA's IPv4 special-purpose registry, and multicast: never public, whatever
# ``is_global`` says in this Python version.
_NON_PUBLIC_V4 = tuple(
    _V4(net)
    for net in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)

# IPv6 special-purpose ranges that are never public (the forms that carry an IPv4
# address are handled apart, below).
_NON_PUBLIC_V6 = tuple(
    _V6(net)
    for net in (
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): where it leads is the site's choice
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments (Teredo, 2001::/32, is handled apart)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs (RFC 9602)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)

# Forms whose destination is the IPv4 address in their last 32 bits.
_LOW32_CARRIERS = (
    _V6("::ffff:0:0/96"),  # IPv4-mapped: the host's own stack connects over IPv4
    _V6("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    _V6("::/96"),  # IPv4-compatible (deprecated; old stacks tunnel it automatically)
    _V6("64:ff9b::/96"),  # NAT64 well-known prefix
)
_SIXTOFOUR = _V6("2002::/16")
_TEREDO = _V6("2001::/32")
# Forms that are only a way to reach the IPv4 addresses they carry: public exactly when
# those are.
_CARRIERS = (*_LOW32_CARRIERS, _SIXTOFOUR, _TEREDO)


def _is_public_v4(ip: ipaddress.IPv4Address) -> bool:
    return ip.is_global and not any(ip in net for net in _NON_PUBLIC_V4)


def _isatap_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    # ISATAP interface id (RFC 5214): 0000:5efe or 0200:5efe (the u bit; the g bit may be
    # set too), then the IPv4 address.
    interface_id = int(ip) & 0xFFFF_FFFF_FFFF_FFFF
    if (interface_id >> 32) & 0xFCFF_FFFF == 0x0000_5EFE:
        return ipaddress.IPv4Address(interface_id & 0xFFFF_FFFF)
    return None


def embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Return every IPv4 address ``ip`` carries (none for a plain IPv6 address)."""
    found: list[ipaddress.IPv4Address] = []
    if any(ip in net for net in _LOW32_CARRIERS):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)  # (server, client)
    isatap = _isatap_ipv4(ip)
    if isatap is not None:
        found.append(isatap)
    return found


def is_public(ip: IPAddress) -> bool:
    """True for globally routable unicast addresses only.

    An IPv6 address that carries IPv4 addresses is public only if each of them is, and
    (unless it is one of the carrier forms, whose reach is that of the IPv4 address) the
    IPv6 address itself is.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return _is_public_v4(ip)
    if not all(_is_public_v4(v4) for v4 in embedded_ipv4(ip)):
        return False
    if any(ip in net for net in _CARRIERS):
        return True
    return ip.is_global and not any(ip in net for net in _NON_PUBLIC_V6)


@dataclass(frozen=True)
class Guard:
    allow_private: bool = False
    allowlist: tuple[str, ...] = ()
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def from_settings(cls) -> Guard:
        from hookway import conf

        settings = conf.get()
        return cls(
            allow_private=settings.allow_private_destinations,
            allowlist=tuple(settings.private_destination_allowlist),
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
