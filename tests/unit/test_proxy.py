"""hookway.proxy: whose X-Forwarded-For / X-Forwarded-Proto Hookway believes."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookway.proxy import TrustedProxies, apply, client_ip, forwarded_client

LOCAL = TrustedProxies(["127.0.0.1", "::1"])
NGINX = TrustedProxies(["10.0.0.5", "10.1.0.0/16"])


def scope(peer: str | None, **headers: str) -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "http",
        "client": None if peer is None else (peer, 40000),
        "headers": [(k.replace("_", "-").lower().encode(), v.encode()) for k, v in headers.items()],
    }


def test_a_trusted_proxys_forwarded_client_and_scheme_are_believed() -> None:
    s = scope("10.0.0.5", x_forwarded_for="203.0.113.9", x_forwarded_proto="https")
    apply(s, NGINX)
    assert s["client"] == ("203.0.113.9", 0)
    assert s["scheme"] == "https"


def test_an_untrusted_peers_forwarding_headers_are_ignored() -> None:
    s = scope("198.51.100.7", x_forwarded_for="203.0.113.9", x_forwarded_proto="https")
    apply(s, NGINX)
    assert s["client"] == ("198.51.100.7", 40000)
    assert s["scheme"] == "http"


def test_addresses_a_client_wrote_left_of_the_first_untrusted_hop_are_not_believed() -> None:
    # The client sent "X-Forwarded-For: 1.2.3.4"; nginx (10.0.0.5) appended the real
    # address, then a second proxy in 10.1.0.0/16 appended nginx's.
    chain = ["1.2.3.4", "203.0.113.9", "10.0.0.5"]
    assert forwarded_client("10.1.2.3", chain, NGINX) == "203.0.113.9"


def test_when_every_hop_is_trusted_the_left_most_is_the_client() -> None:
    assert forwarded_client("10.0.0.5", ["10.1.0.7", "10.0.0.5"], NGINX) == "10.1.0.7"


def test_a_hop_that_is_not_an_address_ends_the_walk_at_the_last_verified_one() -> None:
    assert forwarded_client("10.0.0.5", ["203.0.113.9", "unknown"], NGINX) == "10.0.0.5"
    assert forwarded_client("10.0.0.5", ["evil", "10.1.0.7"], NGINX) == "10.1.0.7"
    assert forwarded_client("10.0.0.5", ["fe80::1%eth0"], NGINX) == "10.0.0.5"


def test_several_header_lines_are_one_list_and_ipv6_is_normalised() -> None:
    s = {
        "type": "http",
        "scheme": "http",
        "client": ("::1", 5),
        "headers": [
            (b"x-forwarded-for", b"198.51.100.1"),
            (b"X-Forwarded-For", b"[2001:DB8::1]"),
        ],
    }
    apply(s, LOCAL)
    assert s["client"] == ("2001:db8::1", 0)


def test_an_ipv4_peer_on_a_dual_stack_socket_is_matched_as_ipv4() -> None:
    s = scope("::ffff:127.0.0.1", x_forwarded_for="203.0.113.9")
    apply(s, LOCAL)
    assert s["client"] == ("203.0.113.9", 0)


def test_star_trusts_every_peer() -> None:
    s = scope("198.51.100.7", x_forwarded_for="203.0.113.9")
    apply(s, TrustedProxies(["*"]))
    assert s["client"] == ("203.0.113.9", 0)


@pytest.mark.parametrize("proto", ["ftp", "", "javascript"])
def test_a_scheme_other_than_http_or_https_is_ignored(proto: str) -> None:
    s = scope("127.0.0.1", x_forwarded_proto=proto)
    apply(s, LOCAL)
    assert s["scheme"] == "http"


@pytest.mark.parametrize(
    ("client", "expected"),
    [(("203.0.113.9", 1), "203.0.113.9"), (None, None), (("/run/hookway.sock", 0), None)],
)
def test_client_ip_is_an_address_or_none(client: Any, expected: str | None) -> None:
    assert client_ip({"client": client}) == expected


hops = st.lists(
    st.one_of(
        st.ip_addresses().map(str),
        st.sampled_from(
            ["10.0.0.5", "10.1.4.4", "unknown", "", " ", "[::1]", "_hidden", "fe80::1%eth0"]
        ),
        st.text(max_size=20),
    ),
    max_size=6,
)


@given(peer=st.sampled_from(["10.0.0.5", "10.1.9.9", "198.51.100.7"]), chain=hops)
def test_the_client_is_always_a_verified_address_from_the_peer_or_the_chain(
    peer: str, chain: list[str]
) -> None:
    found = forwarded_client(peer, chain, NGINX)
    ipaddress.ip_address(found)  # never a value Hookway could not check
    if peer not in NGINX:
        assert found == peer
    else:
        assert found == peer or any(
            str(ipaddress.ip_address(h.strip().strip("[]"))) == found for h in chain if _is_ip(h)
        )


@given(chain=hops, proto=st.text(max_size=10))
def test_apply_never_raises_and_leaves_an_untrusted_peer_alone(
    chain: list[str], proto: str
) -> None:
    raw = ",".join(chain).encode("utf-8", "replace")
    s = {
        "type": "http",
        "scheme": "http",
        "client": ("198.51.100.7", 1),
        "headers": [(b"x-forwarded-for", raw), (b"x-forwarded-proto", proto.encode())],
    }
    apply(s, NGINX)
    assert s["client"] == ("198.51.100.7", 1)
    assert s["scheme"] == "http"


def _is_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return False
    return not (isinstance(ip, ipaddress.IPv6Address) and ip.scope_id)
