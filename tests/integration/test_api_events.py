"""GET /api/v1/events (filters, keyset pages newest first), /events/{id} (headers,
payload or base64 body, every delivery and attempt, in a fixed number of queries) and
/events/{id}/body (byte for byte, with its content type)."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.integration.apidata import T0, event, key, source_and_destination

pytestmark = pytest.mark.django_db(transaction=True)


async def ids(client: httpx.AsyncClient, headers: dict[str, str], query: str) -> list[str]:
    response = await client.get(f"/api/v1/events?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


@sync_to_async
def world() -> dict[str, Any]:
    gh, ci = source_and_destination("gh", "ci")
    gl, _ = source_and_destination("gl", "ci")
    made = {
        "pending": event(gh, "push", at=T0, deliveries=((ci, "pending", 0),)),
        "failing": event(
            gh, "merge_request", at=T0 + timedelta(minutes=1), deliveries=((ci, "pending", 2),)
        ),
        "delivered": event(
            gl,
            "push",
            at=T0 + timedelta(minutes=2),
            deliveries=((ci, "succeeded", 1),),
            delivery_id="abc-1",
        ),
        "dead": event(gl, "tag_push", at=T0 + timedelta(minutes=3), deliveries=((ci, "dead", 3),)),
    }
    return {k: v.pk for k, v in made.items()}


async def test_the_list_is_newest_first_and_every_filter_narrows_it(
    client: httpx.AsyncClient,
) -> None:
    made = await world()
    h = await key("read")

    assert await ids(client, h, "") == [
        made[k] for k in ("dead", "delivered", "failing", "pending")
    ]
    assert await ids(client, h, "source=gh") == [made["failing"], made["pending"]]
    assert await ids(client, h, "event=push") == [made["delivered"], made["pending"]]
    assert await ids(client, h, "event=*_push") == [made["dead"]]
    assert await ids(client, h, "event=merge_*") == [made["failing"]]
    assert await ids(client, h, "event=pu?h&source=gl") == [made["delivered"]]
    for state in ("pending", "failing", "delivered", "dead"):
        assert await ids(client, h, f"state={state}") == [made[state]]
    since = (T0 + timedelta(minutes=1)).isoformat().replace("+00:00", "Z")
    until = (T0 + timedelta(minutes=3)).isoformat().replace("+00:00", "Z")
    assert await ids(client, h, f"since={since}&until={until}") == [
        made["delivered"],
        made["failing"],
    ]
    assert await ids(client, h, "since=2026-03-01T12:02:00") == [made["dead"], made["delivered"]]
    assert await ids(client, h, "delivery_id=abc-1") == [made["delivered"]]
    assert await ids(client, h, f"id={made['dead']}") == [made["dead"]]
    assert await ids(client, h, "source=nope") == []


async def test_an_item_says_each_delivery_s_state(client: httpx.AsyncClient) -> None:
    made = await world()

    response = await client.get("/api/v1/events?state=failing", headers=await key("read"))

    (item,) = response.json()["items"]
    assert item["id"] == made["failing"]
    assert item["source"] == "gh"
    assert [(d["destination"], d["state"], d["attempts"]) for d in item["deliveries"]] == [
        ("ci", "failing", 2)
    ]


async def test_pages_follow_the_cursor_without_skipping_or_repeating_while_events_arrive(
    client: httpx.AsyncClient,
) -> None:
    @sync_to_async
    def seed(n: int, start: int) -> list[str]:
        gh, ci = source_and_destination()
        # Pairs of events share a timestamp: the id breaks the tie.
        return [
            event(gh, at=T0 + timedelta(seconds=(start + i) // 2), deliveries=((ci, "dead", 1),)).pk
            for i in range(n)
        ]

    first = await seed(25, 0)
    h = await key("read")
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        response = await client.get(f"/api/v1/events?limit=10&cursor={cursor}", headers=h)
        assert response.status_code == 200, response.text
        seen += [item["id"] for item in response.json()["items"]]
        pages += 1
        if pages == 1:
            await seed(7, 100)  # newer than everything listed: before the first page
        cursor = response.json()["next"]
        if cursor is None:
            break

    assert pages == 3
    assert len(seen) == len(set(seen)) == 25
    assert set(seen) == set(first)


async def test_limit_is_capped_and_a_foreign_cursor_is_a_400(client: httpx.AsyncClient) -> None:
    h = await key("read")

    too_many = await client.get("/api/v1/events?limit=100000", headers=h)
    bad = await client.get("/api/v1/events?cursor=bm90LWEtY3Vyc29y", headers=h)
    garbage = await client.get("/api/v1/events?cursor=%%%", headers=h)
    deliveries_cursor = await client.get(
        "/api/v1/events?cursor=WyJEIiwiMjAyNi0wMy0wMVQxMjowMDowMCswMDowMCIsIm1zZ18xIl0", headers=h
    )

    naive = await client.get(
        "/api/v1/events?cursor=WyJFIiwiMjAyNi0wMy0wMVQxMjowMDowMCIsImV2dF8xIl0", headers=h
    )

    assert naive.status_code == 400
    assert too_many.status_code == 422
    assert bad.status_code == garbage.status_code == deliveries_cursor.status_code == 400
    assert bad.json()["error"] == "bad_cursor"


async def test_the_detail_has_headers_payload_deliveries_and_attempts_in_few_queries(
    client: httpx.AsyncClient,
) -> None:
    @sync_to_async
    def seed() -> str:
        gh, ci = source_and_destination()
        _, other = source_and_destination("gh", "archive")
        return event(
            gh,
            "push",
            body=b'{"ref": "main", "n": [1, 2]}',
            deliveries=((ci, "succeeded", 3), (other, "dead", 4)),
        ).pk

    event_id = await seed()
    h = await key("read")

    response = await client.get(f"/api/v1/events/{event_id}", headers=h)

    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["headers"] == {"X-Test": "yes"}
    assert detail["body_encoding"] == "json"
    assert detail["payload"] == {"ref": "main", "n": [1, 2]}
    assert detail["body_base64"] is None
    ci, archive = sorted(detail["deliveries"], key=lambda d: d["destination"], reverse=True)
    assert (ci["destination"], ci["state"], ci["attempts"]) == ("ci", "delivered", 3)
    assert [a["number"] for a in ci["attempt_log"]] == [1, 2, 3]
    first = ci["attempt_log"][0]
    assert (first["status_code"], first["latency_ms"], first["error_kind"]) == (
        503,
        12.5,
        "http_status",
    )
    assert len(first["response_excerpt"]) == 2000
    assert first["response_truncated"] is True
    assert ci["attempt_log"][2]["outcome"] == "success"
    assert archive["state"] == "dead"
    assert len(archive["attempt_log"]) == 4


async def test_the_detail_costs_the_same_queries_whatever_the_number_of_attempts(
    client: httpx.AsyncClient,
) -> None:
    from hookway.store import browse

    @sync_to_async
    def queries_for(attempts: int, deliveries: int) -> int:
        gh, _ = source_and_destination()
        targets = [source_and_destination("gh", f"d{attempts}-{i}")[1] for i in range(deliveries)]
        row = event(gh, deliveries=tuple((d, "dead", attempts) for d in targets))
        with CaptureQueriesContext(connection) as captured:
            loaded = browse.event_detail().get(pk=row.pk)
            for d in loaded.deliveries.all():
                _ = d.destination.name, [a.number for a in d.attempt_log.all()]
        return len(captured.captured_queries)

    assert await queries_for(1, 1) == await queries_for(5, 4) == 3


async def test_a_body_that_is_not_utf8_json_comes_base64_encoded(
    client: httpx.AsyncClient,
) -> None:
    raw = b"\xff\xfe binary \x00"

    @sync_to_async
    def seed() -> tuple[str, str]:
        gh, _ = source_and_destination()
        return event(gh, body=raw).pk, event(gh, body=b"a=1&b=2").pk

    binary, form = await seed()
    h = await key("read")

    one = (await client.get(f"/api/v1/events/{binary}", headers=h)).json()
    two = (await client.get(f"/api/v1/events/{form}", headers=h)).json()

    assert one["body_encoding"] == "base64"
    assert one["payload"] is None
    assert base64.b64decode(one["body_base64"]) == raw
    assert two["body_encoding"] == "base64"
    assert base64.b64decode(two["body_base64"]) == b"a=1&b=2"
    assert one["size"] == len(raw)


async def test_the_raw_body_comes_byte_for_byte_with_its_content_type(
    client: httpx.AsyncClient,
) -> None:
    raw = b"\xff\x00<html><script>alert(1)</script>"

    @sync_to_async
    def seed() -> str:
        from hookway.models import Event

        gh, _ = source_and_destination()
        row = event(gh, body=raw)
        Event.objects.filter(pk=row.pk).update(content_type="text/html; charset=latin-1")
        return row.pk

    event_id = await seed()

    response = await client.get(f"/api/v1/events/{event_id}/body", headers=await key("read"))

    assert response.status_code == 200
    assert response.content == raw
    assert response.headers["content-type"] == "text/html; charset=latin-1"
    assert response.headers["content-security-policy"] == "sandbox"
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/evt_nope", "/evt_nope/body", "/" + "x" * 40])
async def test_an_unknown_event_is_a_404_in_the_error_shape(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(f"/api/v1/events{path}", headers=await key("read"))

    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
