"""The sender's address stored with each webhook (Event.client_ip), and whose
X-Forwarded-For Hookway believes (FORWARDED_ALLOW_IPS, hookway.proxy), through Hookway's
real ASGI application in this process. The servers' own proxy handling is out of the
picture here: tests/e2e/test_servers.py and test_nginx.py run them."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async

from hookway.models import Event, Source

pytestmark = pytest.mark.django_db(transaction=True)

PROXY = "10.0.0.5"
CLIENT = "203.0.113.9"


def from_peer(peer: str) -> httpx.AsyncClient:
    from hookway.asgi import application

    transport = httpx.ASGITransport(app=application, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


@pytest.fixture
def trust(settings: Any) -> Callable[..., None]:
    def set_trusted(*entries: str) -> None:
        settings.HOOKWAY = dataclasses.replace(settings.HOOKWAY, forwarded_allow_ips=list(entries))

    return set_trusted


@pytest.fixture
async def inbox(make_source: Callable[..., Source]) -> Source:
    return await sync_to_async(make_source)("inbox")


async def stored_ip(response: httpx.Response) -> str | None:
    assert response.status_code == 202, response.text
    event = await Event.objects.aget(pk=response.json()["id"])
    return event.client_ip


async def test_the_tcp_peer_is_stored_when_no_proxy_is_in_front(inbox: Source, trust) -> None:
    trust(PROXY)
    async with from_peer("198.51.100.7") as c:
        response = await c.post("/hooks/inbox", json={"type": "a"})
    assert await stored_ip(response) == "198.51.100.7"


async def test_a_trusted_proxys_client_address_is_stored(inbox: Source, trust) -> None:
    trust(PROXY)
    async with from_peer(PROXY) as c:
        response = await c.post(
            "/hooks/inbox", json={"type": "a"}, headers={"X-Forwarded-For": f"1.2.3.4, {CLIENT}"}
        )
    # 1.2.3.4 came from the client itself (left of the address the proxy saw).
    assert await stored_ip(response) == CLIENT


async def test_a_spoofed_x_forwarded_for_from_an_untrusted_peer_is_ignored(
    inbox: Source, trust
) -> None:
    trust(PROXY)
    async with from_peer("198.51.100.7") as c:
        response = await c.post(
            "/hooks/inbox", json={"type": "a"}, headers={"X-Forwarded-For": CLIENT}
        )
    assert await stored_ip(response) == "198.51.100.7"


async def test_by_default_only_a_proxy_on_this_machine_is_trusted(inbox: Source) -> None:
    async with from_peer("127.0.0.1") as c:
        local = await c.post(
            "/hooks/inbox", json={"type": "a"}, headers={"X-Forwarded-For": CLIENT}
        )
    async with from_peer(PROXY) as c:
        remote = await c.post(
            "/hooks/inbox", json={"type": "a"}, headers={"X-Forwarded-For": CLIENT}
        )
    assert await stored_ip(local) == CLIENT
    assert await stored_ip(remote) == PROXY


async def test_an_ipv6_client_is_stored_normalised(inbox: Source, trust) -> None:
    trust("::1")
    async with from_peer("::1") as c:
        response = await c.post(
            "/hooks/inbox", json={"type": "a"}, headers={"X-Forwarded-For": "2001:DB8::0:1"}
        )
    assert await stored_ip(response) == "2001:db8::1"


async def test_the_api_shows_the_stored_address(inbox: Source, trust) -> None:
    from django.core.management import call_command

    trust(PROXY)
    async with from_peer(PROXY) as c:
        response = await c.post(
            "/hooks/inbox", json={"type": "a"}, headers={"X-Forwarded-For": CLIENT}
        )
        event_id = response.json()["id"]
        key = await sync_to_async(_api_key)(call_command)
        detail = await c.get(
            f"/api/v1/events/{event_id}", headers={"Authorization": f"Bearer {key}"}
        )
    assert detail.status_code == 200, detail.text
    assert detail.json()["client_ip"] == CLIENT


def _api_key(call_command: Callable[..., Any]) -> str:
    import io

    out = io.StringIO()
    call_command("create_api_key", "test", "--scope", "read", stdout=out)
    return out.getvalue().strip().splitlines()[-1]
