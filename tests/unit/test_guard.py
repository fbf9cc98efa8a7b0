"""hookway.send.guard: only public addresses are reachable unless explicitly allowed."""

from __future__ import annotations

import ipaddress
import re

import pytest

from hookway.send.errors import ConnectFailed, DestinationRefused
from hookway.send.guard import Guard, is_public


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",  # loopback
        "::1",
        "10.0.0.1",  # private
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",  # link-local: cloud metadata
        "100.64.0.1",  # CGNAT
        "224.0.0.1",  # multicast
        "0.0.0.0",  # unspecified
        "240.0.0.1",  # reserved
        "::ffff:127.0.0.1",  # IPv4-mapped loopback
        "fe80::1",  # IPv6 link-local
        "fc00::1",  # IPv6 unique local
    ],
)
def test_non_public_addresses_are_refused(address):
    assert is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2606:4700:4700::1111"])
def test_public_addresses_are_allowed(address):
    assert is_public(ipaddress.ip_address(address)) is True


async def test_localhost_is_refused_by_default_with_a_message_naming_the_address():
    with pytest.raises(DestinationRefused) as refused:
        await Guard().resolve("localhost", 80)
    message = str(refused.value)
    assert "localhost" in message
    assert "127.0.0.1" in message or "::1" in message
    assert "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS" in message


async def test_localhost_is_allowed_when_private_destinations_are():
    ip = await Guard(allow_private=True).resolve("localhost", 80)
    assert ip.is_loopback


async def test_localhost_is_allowed_by_a_network_in_the_allowlist():
    ip = await Guard(allowlist=("127.0.0.0/8",)).resolve("localhost", 80)
    assert ip == ipaddress.ip_address("127.0.0.1")


async def test_localhost_is_allowed_by_its_hostname_in_the_allowlist():
    ip = await Guard(allowlist=("LocalHost",)).resolve("localhost", 80)
    assert ip.is_loopback


async def test_an_allowlist_that_does_not_match_still_refuses():
    with pytest.raises(DestinationRefused):
        await Guard(allowlist=("10.0.0.0/8", "example.com", "not-a-network/99")).resolve(
            "localhost", 80
        )


async def test_a_literal_public_ip_is_returned_as_is():
    assert await Guard().resolve("93.184.215.14", 443) == ipaddress.ip_address("93.184.215.14")


async def test_a_bracketed_ipv6_literal_is_checked_like_any_address():
    with pytest.raises(DestinationRefused, match="::1"):
        await Guard().resolve("[::1]", 80)


async def test_an_unresolvable_name_is_a_connection_failure():
    with pytest.raises(ConnectFailed, match=re.escape("no-such-host.invalid")):
        await Guard(allow_private=True).resolve("no-such-host.invalid", 80)


# -- IPv6 forms that carry an IPv4 address ------------------------------------------------
# Each form below makes a packet reach (or claim to come from) the IPv4 address it embeds,
# through the host's own stack, a NAT64 gateway or a tunnel relay; a private IPv4 must not
# slip through inside one. Literal addresses only: nothing here sends a packet.

NON_PUBLIC_IPV4 = [
    "127.0.0.1",
    "10.0.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
]


def _hex32(v4: str) -> str:
    value = int(ipaddress.IPv4Address(v4))
    return f"{value >> 16:x}:{value & 0xFFFF:x}"


def _teredo(server: str, client: str) -> str:
    # 2001:0:<server>:<flags>:<port ^ ffff>:<client ^ ffffffff> (RFC 4380)
    obfuscated = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return f"2001:0:{_hex32(server)}:0:f227:{obfuscated >> 16:x}:{obfuscated & 0xFFFF:x}"


EMBEDDING_FORMS = {
    "ipv4-mapped": lambda v4: f"::ffff:{v4}",
    "ipv4-translated": lambda v4: f"::ffff:0:{v4}",
    "ipv4-compatible": lambda v4: f"::{v4}",
    "nat64": lambda v4: f"64:ff9b::{v4}",
    "6to4": lambda v4: f"2002:{_hex32(v4)}::1",
    "teredo-client": lambda v4: _teredo("8.8.8.8", v4),
    "teredo-server": lambda v4: _teredo(v4, "8.8.8.8"),
    "isatap": lambda v4: f"2606:4700:4700:1:0:5efe:{v4}",
    "isatap-global": lambda v4: f"2606:4700:4700:1:200:5efe:{v4}",
    "6to4-with-isatap": lambda v4: f"2002:808:808:1:200:5efe:{v4}",
}


@pytest.mark.parametrize("v4", NON_PUBLIC_IPV4)
@pytest.mark.parametrize("form", sorted(EMBEDDING_FORMS))
def test_an_ipv6_form_carrying_a_non_public_ipv4_is_refused(form, v4):
    address = ipaddress.IPv6Address(EMBEDDING_FORMS[form](v4))
    assert is_public(address) is False, address


@pytest.mark.parametrize("form", sorted(EMBEDDING_FORMS))
def test_an_ipv6_form_carrying_a_public_ipv4_is_public(form):
    address = ipaddress.IPv6Address(EMBEDDING_FORMS[form]("8.8.8.8"))
    assert is_public(address) is True, address


def test_the_6to4_address_of_a_public_ipv4_is_public():
    assert is_public(ipaddress.ip_address("2002:0808:0808::")) is True


@pytest.mark.parametrize("v4", ["8.8.8.8", *NON_PUBLIC_IPV4])
def test_local_use_nat64_is_never_public(v4):
    # 64:ff9b:1::/48 (RFC 8215) is a site's own translator: where it leads is not knowable.
    assert is_public(ipaddress.ip_address(f"64:ff9b:1::{v4}")) is False


@pytest.mark.parametrize(
    "address",
    [
        "::",  # unspecified
        "100::1",  # discard-only
        "2001:db8::1",  # documentation
        "3fff::1",  # documentation (RFC 9637)
        "fec0::1",  # site-local (deprecated)
        "ff02::1",  # multicast
        "ff0e::1",  # global-scope multicast
        "192.0.0.9",  # IETF protocol assignments
        "192.88.99.1",  # 6to4 relay anycast (deprecated)
        "198.18.0.1",  # benchmarking
        "255.255.255.255",  # broadcast
    ],
)
def test_special_purpose_addresses_are_refused_whatever_the_python_version(address):
    assert is_public(ipaddress.ip_address(address)) is False


@pytest.mark.parametrize(
    "address", ["64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1", "::ffff:0:a9fe:a9fe", "::a9fe:a9fe"]
)
async def test_the_guard_refuses_a_literal_that_carries_a_metadata_address(address):
    with pytest.raises(DestinationRefused, match=re.escape(address)):
        await Guard().resolve(f"[{address}]", 80)


async def test_allow_private_still_allows_an_embedded_private_ipv4():
    ip = await Guard(allow_private=True).resolve("[64:ff9b::7f00:1]", 80)
    assert ip == ipaddress.ip_address("64:ff9b::127.0.0.1")


async def test_an_allowlisted_ipv6_network_allows_its_embedded_forms():
    ip = await Guard(allowlist=("64:ff9b::/96",)).resolve("[64:ff9b::a00:1]", 80)
    assert ip == ipaddress.ip_address("64:ff9b::10.0.0.1")
