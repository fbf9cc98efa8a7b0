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
