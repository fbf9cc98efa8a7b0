"""hookway.config.sync against a real database, and HOOKWAY_CONFIG at server start."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from hookway import gate
from hookway.config.file import parse
from hookway.config.sync import SyncReport, sync
from hookway.dispatch.dispatcher import Dispatcher, DispatcherConfig
from hookway.models import Delivery, DeliveryState, Destination, Event, Route, Source
from hookway.send.guard import Guard
from hookway.store import destinations
from hookway.store.destinations import ConfigFileDecides
from hookway.store.events import IncomingEvent, store_events
from tests.receivers import Reply

WHSEC = "whsec_" + base64.b64encode(b"s" * 32).decode()
ENV = {"CFG_TOKEN": "t0ken", "CI_TOKEN": "ci-bearer", "CI_PASSWORD": "ci-pw"}

FULL = f"""
[[sources]]
slug = "gitlab"
verify = "gitlab"
secret = ["env:CFG_TOKEN", "literal-old"]
require_event_name = true
max_body_bytes = 2048

[[sources]]
slug = "plain"

[[destinations]]
name = "ci-bot"
url = "https://ci.example.com/hooks"
signing_secret = "{WHSEC}"
timeout_seconds = 7.5
max_attempts = 3
concurrency = 4

[[destinations]]
name = "audit"
url = "http://audit.example.com/in"

[[routes]]
source = "gitlab"
destination = "ci-bot"
events = ["push", "merge_request*"]

[[routes]]
source = "gitlab"
destination = "audit"

[[routes]]
source = "plain"
destination = "audit"
"""


def apply(text: str) -> SyncReport:
    return sync(parse(text, env=ENV))


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every synced column of every row (not timestamps), to compare two syncs."""
    return {
        "sources": list(
            Source.objects.order_by("slug").values_list(
                "pk",
                "slug",
                "verify",
                "secrets",
                "require_event_name",
                "max_body_bytes",
                "enabled",
                "managed",
            )
        ),
        "destinations": list(
            Destination.objects.order_by("name").values_list(
                "pk",
                "name",
                "url",
                "signing_secret",
                "timeout_seconds",
                "max_attempts",
                "concurrency",
                "enabled",
                "disabled_reason",
                "headers",
                "bearer_token",
                "basic_auth",
                "forward_headers",
                "managed",
            )
        ),
        "routes": list(
            Route.objects.order_by("source__slug", "destination__name").values_list(
                "pk", "source__slug", "destination__name", "events", "enabled", "managed"
            )
        ),
    }


def store_event(source: Source, destination: Destination | None = None) -> Event:
    now = timezone.now()
    event = Event.objects.create(
        source=source, event_name="push", headers={}, body=b"{}", received_at=now
    )
    if destination is not None:
        Delivery.objects.create(
            event=event, destination=destination, next_attempt_at=now, created_at=now
        )
    return event


# -- sync() -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_sync_creates_managed_sources_destinations_and_routes():
    report = apply(FULL)

    assert report == SyncReport(sources=2, destinations=2, routes=3, disabled=0)
    gitlab = Source.objects.get(slug="gitlab")
    assert (gitlab.verify, gitlab.secrets) == ("gitlab", ["env:CFG_TOKEN", "literal-old"])
    assert (gitlab.require_event_name, gitlab.max_body_bytes) == (True, 2048)
    assert (gitlab.enabled, gitlab.managed) == (True, True)
    plain = Source.objects.get(slug="plain")
    assert (plain.verify, plain.secrets, plain.managed) == ("none", [], True)

    ci = Destination.objects.get(name="ci-bot")
    assert (ci.url, ci.signing_secret) == ("https://ci.example.com/hooks", WHSEC)
    assert (ci.timeout_seconds, ci.max_attempts, ci.concurrency) == (7.5, 3, 4)
    assert (ci.enabled, ci.disabled_reason, ci.managed) == (True, "", True)
    audit = Destination.objects.get(name="audit")
    assert (audit.timeout_seconds, audit.max_attempts, audit.concurrency) == (15.0, 10, 20)

    routes = {
        (r.source.slug, r.destination.name): r
        for r in Route.objects.select_related("source", "destination")
    }
    assert set(routes) == {("gitlab", "ci-bot"), ("gitlab", "audit"), ("plain", "audit")}
    assert routes["gitlab", "ci-bot"].events == ["push", "merge_request*"]
    assert routes["gitlab", "audit"].events == []
    assert all(r.managed and r.enabled for r in routes.values())


@pytest.mark.django_db
def test_syncing_the_same_file_twice_changes_nothing():
    apply(FULL)
    before = snapshot()

    report = apply(FULL)

    assert report == SyncReport(sources=2, destinations=2, routes=3, disabled=0)
    assert snapshot() == before


@pytest.mark.django_db
def test_a_changed_file_updates_the_rows_in_place():
    apply(FULL)
    ids = (Source.objects.get(slug="gitlab").pk, Destination.objects.get(name="ci-bot").pk)
    changed = (
        FULL.replace('verify = "gitlab"', 'verify = "token"')
        .replace('"literal-old"', '"literal-new"')
        .replace("max_body_bytes = 2048", "max_body_bytes = 4096")
        .replace("https://ci.example.com/hooks", "https://ci2.example.com/hooks")
        .replace("max_attempts = 3", "max_attempts = 5")
        .replace('events = ["push", "merge_request*"]', 'events = ["tag_push"]')
    )

    apply(changed)

    gitlab = Source.objects.get(slug="gitlab")
    assert gitlab.pk == ids[0]
    assert (gitlab.verify, gitlab.secrets) == ("token", ["env:CFG_TOKEN", "literal-new"])
    assert gitlab.max_body_bytes == 4096
    ci = Destination.objects.get(name="ci-bot")
    assert ci.pk == ids[1]
    assert (ci.url, ci.max_attempts) == ("https://ci2.example.com/hooks", 5)
    route = Route.objects.get(source=gitlab, destination=ci)
    assert route.events == ["tag_push"]
    assert Source.objects.count() == 2
    assert Destination.objects.count() == 2
    assert Route.objects.count() == 3


AUTH = """
[[destinations]]
name = "ci-bot"
url = "https://ci.example.com/hooks"
headers = { "X-Team" = "ops", "X-Gitlab-Token" = "env:CFG_TOKEN" }
bearer_token = "env:CI_TOKEN"
forward_headers = ["X-Gitlab-*"]
"""


@pytest.mark.django_db
def test_destination_headers_and_auth_are_synced_as_references():
    apply(AUTH)

    ci = Destination.objects.get(name="ci-bot")
    assert ci.headers == {"X-Team": "ops", "X-Gitlab-Token": "env:CFG_TOKEN"}
    assert (ci.bearer_token, ci.basic_auth) == ("env:CI_TOKEN", "")
    assert ci.forward_headers == ["X-Gitlab-*"]


@pytest.mark.django_db
def test_changed_or_removed_headers_and_auth_are_synced():
    apply(AUTH)
    before = snapshot()
    apply(AUTH)
    assert snapshot() == before

    apply(
        AUTH.replace('bearer_token = "env:CI_TOKEN"', "")
        .replace('forward_headers = ["X-Gitlab-*"]', "")
        .replace('"X-Team" = "ops", ', "")
        + 'basic_auth = { user = "ci", password = "env:CI_PASSWORD" }\n'
    )
    ci = Destination.objects.get(name="ci-bot")
    assert ci.headers == {"X-Gitlab-Token": "env:CFG_TOKEN"}
    assert (ci.bearer_token, ci.basic_auth) == ("", "ci:env:CI_PASSWORD")
    assert ci.forward_headers == []

    apply(AUTH.split("headers =")[0])
    ci = Destination.objects.get(name="ci-bot")
    assert (ci.headers, ci.bearer_token, ci.basic_auth, ci.forward_headers) == ({}, "", "", [])


@pytest.mark.django_db
def test_a_source_disabled_in_the_file_is_stored_disabled_and_enabled_again_later():
    apply(FULL.replace('slug = "plain"', 'slug = "plain"\nenabled = false'))
    assert Source.objects.get(slug="plain").enabled is False

    apply(FULL)
    assert Source.objects.get(slug="plain").enabled is True


@pytest.mark.django_db
def test_a_managed_source_removed_from_the_file_is_disabled_and_keeps_its_events():
    apply(FULL)
    plain = Source.objects.get(slug="plain")
    event = store_event(plain, Destination.objects.get(name="audit"))
    without_plain = FULL.replace('[[sources]]\nslug = "plain"\n', "").replace(
        '[[routes]]\nsource = "plain"\ndestination = "audit"\n', ""
    )

    report = apply(without_plain)

    plain.refresh_from_db()
    assert (plain.enabled, plain.managed) == (False, True)
    assert Event.objects.filter(pk=event.pk, source=plain).exists()
    assert Delivery.objects.filter(event=event).count() == 1
    # The source and its route: one disabled, one removed.
    assert report == SyncReport(sources=1, destinations=2, routes=2, disabled=2)
    assert not Route.objects.filter(source=plain).exists()

    # Back in the file: enabled again.
    apply(FULL)
    plain.refresh_from_db()
    assert plain.enabled is True


@pytest.mark.django_db
def test_a_managed_destination_removed_from_the_file_is_disabled_and_keeps_its_deliveries():
    apply(FULL)
    ci = Destination.objects.get(name="ci-bot")
    event = store_event(Source.objects.get(slug="gitlab"), ci)
    without_ci = FULL.replace(
        '[[routes]]\nsource = "gitlab"\ndestination = "ci-bot"\nevents = ["push", "merge_request*"]\n',
        "",
    ).replace(
        f'[[destinations]]\nname = "ci-bot"\nurl = "https://ci.example.com/hooks"\n'
        f'signing_secret = "{WHSEC}"\ntimeout_seconds = 7.5\nmax_attempts = 3\nconcurrency = 4\n',
        "",
    )
    assert "ci-bot" not in without_ci

    apply(without_ci)

    ci.refresh_from_db()
    assert (ci.enabled, ci.managed) == (False, True)
    assert ci.disabled_reason == "removed from the config file"
    assert Delivery.objects.filter(event=event, destination=ci).count() == 1
    assert Event.objects.filter(pk=event.pk).exists()

    apply(FULL)
    ci.refresh_from_db()
    assert (ci.enabled, ci.disabled_reason) == (True, "")


@pytest.mark.django_db
def test_a_managed_route_removed_from_the_file_is_deleted():
    apply(FULL)
    without_route = FULL.replace('[[routes]]\nsource = "gitlab"\ndestination = "audit"\n', "")

    report = apply(without_route)

    assert report.disabled == 1
    assert not Route.objects.filter(source__slug="gitlab", destination__name="audit").exists()
    assert Route.objects.count() == 2
    # Both ends stay: they are still in the file.
    assert Source.objects.get(slug="gitlab").enabled
    assert Destination.objects.get(name="audit").enabled


@pytest.mark.django_db
def test_entries_created_in_the_admin_are_never_touched():
    own_source = Source.objects.create(slug="manual", verify="token", secrets=["x"])
    own_destination = Destination.objects.create(name="manual-dest", url="https://m.example.com/")
    apply(FULL)
    own_route = Route.objects.create(
        source=Source.objects.get(slug="gitlab"), destination=own_destination, events=["push"]
    )
    admin_rows = (
        list(Source.objects.filter(managed=False).values()),
        list(Destination.objects.filter(managed=False).values()),
        list(Route.objects.filter(managed=False).values()),
    )

    apply(FULL)
    apply('[[sources]]\nslug = "other"\n')  # everything managed leaves the file

    assert admin_rows == (
        list(Source.objects.filter(managed=False).values()),
        list(Destination.objects.filter(managed=False).values()),
        list(Route.objects.filter(managed=False).values()),
    )
    own_source.refresh_from_db()
    own_destination.refresh_from_db()
    assert own_source.enabled
    assert own_destination.enabled
    assert Route.objects.filter(pk=own_route.pk).exists()
    assert not Source.objects.get(slug="gitlab").enabled
    assert not Route.objects.filter(managed=True).exists()


# -- a destination disabled by a 410 ------------------------------------------------------


async def gone_destination(receiver: Any) -> tuple[str, Any]:
    """Sync a file whose destination answers 410, deliver one event: the dispatcher
    disables the destination. Returns the file text and the receiver."""
    gone = receiver(lambda request, n: Reply(status=410))
    text = f"""
[[sources]]
slug = "src"
[[destinations]]
name = "gone"
url = "{gone.url()}"
[[routes]]
source = "src"
destination = "gone"
"""
    await gate.async_sync_config(parse(text, env={}))
    source = await Source.objects.aget(slug="src")
    await gate.astore_event(incoming(source))
    config = DispatcherConfig(
        concurrency=5,
        lease_seconds=5,
        poll_interval=0.05,
        shutdown_grace=1,
        retry_schedule=(0,),
        until_empty=True,
        listen_postgres=False,
    )
    await asyncio.wait_for(Dispatcher(config, guard=Guard(allow_private=True)).run(), 30)
    assert len(gone.received()) == 1
    destination = await Destination.objects.aget(name="gone")
    assert destination.enabled is False
    assert destination.disabled_reason.startswith("410 Gone")
    return text, gone


@pytest.mark.django_db(transaction=True)
async def test_a_destination_disabled_by_a_410_stays_disabled_across_a_resync(receiver):
    text, _ = await gone_destination(receiver)
    before = await Destination.objects.aget(name="gone")

    await gate.async_sync_config(parse(text, env={}))

    after = await Destination.objects.aget(name="gone")
    assert after.enabled is False
    assert after.disabled_reason == before.disabled_reason
    assert await Delivery.objects.filter(state=DeliveryState.DEAD).acount() == 1


@pytest.mark.django_db(transaction=True)
async def test_a_410_disabled_destination_is_enabled_again_when_the_file_changes_its_url(
    receiver,
):
    text, gone = await gone_destination(receiver)

    await gate.async_sync_config(parse(text.replace("/hook", "/moved"), env={}))

    destination = await Destination.objects.aget(name="gone")
    assert (destination.enabled, destination.disabled_reason) == (True, "")
    assert destination.url == gone.url("/moved")


@pytest.mark.django_db(transaction=True)
async def test_a_410_disabled_destination_is_enabled_again_by_turning_it_off_and_on_in_the_file(
    receiver,
):
    text, _ = await gone_destination(receiver)
    switched_off = text.replace('name = "gone"', 'name = "gone"\nenabled = false')

    await gate.async_sync_config(parse(switched_off, env={}))
    assert (await Destination.objects.aget(name="gone")).enabled is False
    await gate.async_sync_config(parse(text, env={}))

    destination = await Destination.objects.aget(name="gone")
    assert (destination.enabled, destination.disabled_reason) == (True, "")


# -- HOOKWAY_CONFIG at server start -------------------------------------------------------


def test_a_server_with_an_invalid_config_file_exits_and_logs_why(start_server, tmp_path: Path):
    path = tmp_path / "hookway.toml"
    path.write_text('[[sources]]\nslug = "gitlab"\nverify = "gitlab-ish"\nsecret = "x"\n')

    with pytest.raises(RuntimeError) as info:
        start_server({"HOOKWAY_CONFIG": str(path)})

    message = str(info.value)
    assert message.startswith("server exited with ")
    assert f"{path}: sources[0].verify: 'gitlab-ish' is not one of" in message
    assert not Source.objects.exists()


def test_a_server_with_a_config_file_needing_an_unset_variable_exits(start_server, tmp_path):
    path = tmp_path / "hookway.toml"
    path.write_text('[[sources]]\nslug = "gitlab"\nverify = "token"\nsecret = "env:NOT_SET_H6"\n')

    with pytest.raises(RuntimeError) as info:
        start_server({"HOOKWAY_CONFIG": str(path)})

    assert "environment variable NOT_SET_H6 is not set or empty" in str(info.value)


def test_a_server_with_a_valid_config_file_serves_its_source_at_once(start_server, tmp_path):
    path = tmp_path / "hookway.toml"
    path.write_text('[[sources]]\nslug = "cfg"\nverify = "token"\nsecret = "env:CFG_TOKEN"\n')

    server = start_server({"HOOKWAY_CONFIG": str(path), "CFG_TOKEN": "t0ken"})

    ok = httpx.post(
        f"{server.url}/hooks/cfg",
        json={"event_name": "push"},
        headers={"X-Webhook-Token": "t0ken"},
        timeout=10,
    )
    assert ok.status_code == 202, ok.text
    assert Event.objects.filter(pk=ok.json()["id"], source__slug="cfg").exists()
    forged = httpx.post(
        f"{server.url}/hooks/cfg",
        json={"event_name": "push"},
        headers={"X-Webhook-Token": "wrong"},
        timeout=10,
    )
    assert forged.status_code == 401
    assert Source.objects.get(slug="cfg").managed is True


@pytest.mark.django_db(transaction=True)
async def test_the_same_config_is_applied_once_and_a_change_again(tmp_path, caplog):
    import logging

    from django.conf import settings

    from hookway import runtime

    path = tmp_path / "hookway.toml"
    path.write_text('[[sources]]\nslug = "once"\n')
    caplog.set_level(logging.DEBUG, "hookway.runtime")
    original = settings.HOOKWAY
    settings.HOOKWAY = dataclasses.replace(original, config_path=path)
    try:
        # Three processes starting with the same file (web workers, a dispatcher).
        await asyncio.gather(*(runtime.apply_config_file() for _ in range(3)))
        applied = [r for r in caplog.records if "applied:" in r.getMessage()]
        assert len(applied) == 1, [r.getMessage() for r in caplog.records]
        path.write_text('[[sources]]\nslug = "once"\n\n# a comment changes nothing\n')
        await runtime.apply_config_file()
        assert len([r for r in caplog.records if "applied:" in r.getMessage()]) == 1
        path.write_text('[[sources]]\nslug = "twice"\n')
        await runtime.apply_config_file()
        assert len([r for r in caplog.records if "applied:" in r.getMessage()]) == 2
    finally:
        settings.HOOKWAY = original
    assert await Source.objects.filter(slug="twice", enabled=True).aexists()
    assert not await Source.objects.filter(slug="once", enabled=True).aexists()


# -- operational state the file does not own: enable after a 410, pause -----------------


def incoming(source: Source) -> IncomingEvent:
    return IncomingEvent(
        source_id=source.pk,
        event_name="push",
        delivery_id=None,
        content_type="application/json",
        headers={},
        body=b"{}",
        received_at=timezone.now(),
    )


@pytest.mark.django_db(transaction=True)
async def test_a_410_disabled_managed_destination_enabled_by_an_operator_stays_enabled_across_a_resync(
    receiver,
):
    text, _ = await gone_destination(receiver)
    source = await Source.objects.aget(slug="src")
    # While it is disabled, new events still create its deliveries; they wait.
    waiting = await gate.astore_event(incoming(source))
    assert waiting.deliveries == 1

    change = await gate.aenable_destination("gone")
    assert change.changed
    await gate.async_sync_config(parse(text, env={}))  # the next start: the same file

    destination = await Destination.objects.aget(name="gone")
    assert (destination.enabled, destination.disabled_reason) == (True, "")
    assert (await Delivery.objects.aget(event_id=waiting.id)).state == DeliveryState.PENDING


def without_audit() -> str:
    """FULL without the audit destination and the routes to it."""
    text = (
        FULL.replace('[[routes]]\nsource = "gitlab"\ndestination = "audit"\n', "")
        .replace('[[routes]]\nsource = "plain"\ndestination = "audit"\n', "")
        .replace('[[destinations]]\nname = "audit"\nurl = "http://audit.example.com/in"\n', "")
    )
    assert "audit" not in text
    return text


@pytest.mark.django_db
def test_a_destination_the_file_disables_is_enabled_only_by_the_file():
    apply(FULL.replace('name = "audit"', 'name = "audit"\nenabled = false'))
    audit = Destination.objects.get(name="audit")
    assert (audit.enabled, audit.disabled_reason) == (False, "disabled in the config file")

    with pytest.raises(ConfigFileDecides, match="'audit' is disabled in the config file"):
        destinations.enable("audit")
    assert Destination.objects.get(name="audit").enabled is False

    apply(FULL)
    audit.refresh_from_db()
    assert (audit.enabled, audit.disabled_reason) == (True, "")


@pytest.mark.django_db
def test_a_destination_removed_from_the_file_is_not_enabled_by_an_operator():
    apply(FULL)
    apply(without_audit())
    assert not Route.objects.filter(destination__name="audit").exists()

    with pytest.raises(ConfigFileDecides, match="'audit' was removed from the config file"):
        destinations.enable("audit")


@pytest.mark.django_db(transaction=True)
def test_a_destination_removed_from_the_file_gets_no_new_deliveries():
    apply(FULL)
    apply(without_audit())

    stored = store_events([incoming(Source.objects.get(slug="plain"))])

    # Its routes left with it: nothing to wait for.
    assert stored[0].deliveries == 0


@pytest.mark.django_db
def test_a_paused_managed_destination_stays_paused_across_a_resync():
    apply(FULL)
    destinations.pause("ci-bot", "receiver maintenance")
    before = Destination.objects.get(name="ci-bot")

    apply(FULL)

    after = Destination.objects.get(name="ci-bot")
    assert (after.paused, after.paused_at, after.paused_reason) == (
        True,
        before.paused_at,
        "receiver maintenance",
    )
