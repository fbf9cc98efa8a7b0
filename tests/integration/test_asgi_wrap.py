"""hookway.asgi.wrap: the fast ingest path and the lifespan in front of a host project's
own ASGI application, which keeps everything else."""

from __future__ import annotations

import dataclasses
import gc
from typing import Any

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import clear_url_caches, get_resolver

from hookway import asgi, conf, runtime
from hookway.models import Event

pytestmark = pytest.mark.django_db(transaction=True)


class HostApp:
    """A host project's ASGI app: answers 200 "host" and records what reached it."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"  # the lifespan never reaches it (Django refuses it)
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"host"})


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_webhooks_take_hookways_path_and_everything_else_reaches_the_host(make_source):
    from asgiref.sync import sync_to_async

    await sync_to_async(make_source)(slug="gitlab")
    host = HostApp()
    async with client_for(asgi.wrap(host)) as client:
        stored = await client.post("/hooks/gitlab", json={"event_name": "push"})
        unknown = await client.post("/hooks/nope", json={"event_name": "push"})
        page = await client.get("/shop/")

    assert stored.status_code == 202, stored.text
    assert await Event.objects.filter(pk=stored.json()["id"]).aexists()
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "unknown_source"
    assert page.text == "host"
    assert host.paths == ["/shop/"]


async def test_the_header_limits_guard_the_webhook_path_only():
    host = HostApp()
    many = {f"x-h{i}": "v" for i in range(conf.get().max_headers + 1)}
    async with client_for(asgi.wrap(host)) as client:
        refused = await client.post("/hooks/gitlab", json={}, headers=many)
        passed = await client.get("/shop/", headers=many)
    assert refused.status_code == 431
    assert passed.text == "host"


def test_a_prefix_the_urlconf_does_not_route_to_hookway_is_refused_at_once():
    with pytest.raises(ImproperlyConfigured, match=r"include\('hookway.urls'\)"):
        asgi.wrap(HostApp(), prefix="/webhooks/")
    with pytest.raises(ImproperlyConfigured, match="expected"):
        asgi.wrap(HostApp(), prefix="hooks")


async def test_the_lifespan_runs_hookways_startup_and_shutdown(
    settings, monkeypatch, python_gc_thresholds
):
    settings.HOOKWAY = dataclasses.replace(settings.HOOKWAY, embedded_dispatcher=False)
    gc.unfreeze()
    monkeypatch.setattr(runtime, "_heap_frozen", False)
    clear_url_caches()
    assert not get_resolver()._populated
    app = asgi.wrap(HostApp())
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    # What startup left alive is out of the cyclic collector's reach (runtime.prepare_collector).
    assert gc.get_freeze_count() > 10_000
    # and the young generation is collected after HOOKWAY_GC_GEN0_THRESHOLD allocations.
    assert gc.get_threshold() == (conf.get().gc_gen0_threshold, 10, 10) == (2000, 10, 10)
    # The URLconf is loaded at startup, not in the first request on the loop.
    assert get_resolver()._populated
