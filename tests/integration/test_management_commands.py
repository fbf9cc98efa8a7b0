"""manage.py sync_config, replay and dispatch, through call_command (and, for dispatch,
a real process delivering to a real local receiver)."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from hookway.management.commands.replay import parse_since
from hookway.models import Attempt, Delivery, DeliveryState, Destination, Event, Route, Source
from tests.conftest import spawn

pytestmark = pytest.mark.usefixtures("transactional_db")

CONFIG = """
[[sources]]
slug = "gitlab"
verify = "token"
secret = "literal-token"

[[destinations]]
name = "ci-bot"
url = "https://ci.example.com/hooks"

[[destinations]]
name = "audit"
url = "https://audit.example.com/in"

[[routes]]
source = "gitlab"
destination = "ci-bot"

[[routes]]
source = "gitlab"
destination = "audit"
events = ["push"]
"""


def run(*args: Any) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "hookway.toml"
    path.write_text(CONFIG)
    return path


# -- sync_config --------------------------------------------------------------------------


def test_sync_config_check_reports_the_counts_and_changes_nothing(config_path: Path):
    out = run("sync_config", str(config_path), "--check")

    assert out.strip() == f"{config_path}: valid (1 sources, 2 destinations, 2 routes)"
    assert not Source.objects.exists()
    assert not Destination.objects.exists()
    assert not Route.objects.exists()


def test_sync_config_applies_the_file(config_path: Path):
    out = run("sync_config", str(config_path))

    assert out.strip() == (
        f"{config_path}: 1 sources, 2 destinations, 2 routes synced; "
        "0 entries no longer in the file disabled or removed"
    )
    assert list(Source.objects.values_list("slug", "managed")) == [("gitlab", True)]
    assert sorted(Destination.objects.values_list("name", flat=True)) == ["audit", "ci-bot"]
    assert Route.objects.filter(managed=True).count() == 2


def test_sync_config_reports_what_left_the_file(config_path: Path):
    run("sync_config", str(config_path))
    audit_route = '[[routes]]\nsource = "gitlab"\ndestination = "audit"\nevents = ["push"]\n'
    assert audit_route in CONFIG
    config_path.write_text(CONFIG.replace(audit_route, ""))

    out = run("sync_config", str(config_path))

    assert "1 routes synced; 1 entries no longer in the file disabled or removed" in out
    assert not Route.objects.filter(destination__name="audit").exists()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[[sources]]\nslug = "x"\nverify = "nope"\n', "sources[0].verify: 'nope' is not one of"),
        ('[[routes]]\nsource = "a"\ndestination = "b"\n', "routes[0].source: no source 'a'"),
        ("[[sources]\n", "not valid TOML"),
    ],
)
def test_sync_config_rejects_a_bad_file_with_the_message(tmp_path: Path, text: str, expected):
    path = tmp_path / "bad.toml"
    path.write_text(text)

    with pytest.raises(CommandError) as info:
        run("sync_config", str(path))

    assert str(info.value).startswith(f"{path}: ")
    assert expected in str(info.value)
    assert not Source.objects.exists()


def test_sync_config_check_rejects_a_bad_file_too(tmp_path: Path):
    path = tmp_path / "bad.toml"
    path.write_text('[[destinations]]\nname = "d"\nurl = "ftp://x.test/"\n')

    with pytest.raises(CommandError, match=r"destinations\[0\]\.url: 'ftp://x.test/' must be"):
        run("sync_config", str(path), "--check")


def test_sync_config_of_a_missing_file_says_it_cant_read_it(tmp_path: Path):
    with pytest.raises(CommandError, match=r"missing\.toml: can't read"):
        run("sync_config", str(tmp_path / "missing.toml"))


def test_sync_config_without_a_path_or_hookway_config_is_an_error(settings):
    assert settings.HOOKWAY.config_path is None
    with pytest.raises(CommandError, match="pass a path or set HOOKWAY_CONFIG"):
        run("sync_config")


# -- replay -------------------------------------------------------------------------------


@pytest.fixture
def routed(config_path: Path) -> dict[str, Any]:
    """The CONFIG synced, and one 'push' event delivered to both destinations."""
    run("sync_config", str(config_path))
    now = timezone.now()
    event = Event.objects.create(
        source=Source.objects.get(slug="gitlab"),
        event_name="push",
        headers={},
        body=b'{"event_name": "push"}',
        received_at=now,
    )
    originals = [
        Delivery.objects.create(
            event=event,
            destination=destination,
            state=DeliveryState.SUCCEEDED,
            attempts=1,
            next_attempt_at=now,
            created_at=now,
            completed_at=now,
        )
        for destination in Destination.objects.order_by("name")
    ]
    return {"event": event, "originals": originals}


def original_rows(deliveries: list[Delivery]) -> list[dict[str, Any]]:
    return list(Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).order_by("pk").values())


def test_replay_creates_new_deliveries_of_the_event_to_every_destination(routed):
    event, originals = routed["event"], routed["originals"]
    before = original_rows(originals)

    out = run("replay", event.pk)

    assert out.strip() == "2 deliveries created for 1 event(s)"
    new = list(Delivery.objects.exclude(pk__in=[d.pk for d in originals]))
    assert len(new) == 2
    assert {d.destination.name for d in new} == {"ci-bot", "audit"}
    assert all(d.event_id == event.pk for d in new)
    assert all(d.state == DeliveryState.PENDING and d.attempts == 0 for d in new)
    # New webhook-ids: receivers must not dedupe a replay away.
    assert {d.pk for d in new}.isdisjoint({d.pk for d in originals})
    assert all(d.pk.startswith("msg_") for d in new)
    assert original_rows(originals) == before


def test_replay_to_one_destination_creates_only_that_delivery(routed):
    out = run("replay", routed["event"].pk, "--destination", "audit")

    assert out.strip() == "1 deliveries created for 1 event(s)"
    new = Delivery.objects.exclude(pk__in=[d.pk for d in routed["originals"]])
    assert [d.destination.name for d in new] == ["audit"]


def test_replay_of_several_events_at_once(routed):
    second = Event.objects.create(
        source=routed["event"].source,
        event_name="merge_request",
        headers={},
        body=b"{}",
        received_at=timezone.now(),
    )

    out = run("replay", routed["event"].pk, second.pk)

    # The merge_request event matches only the catch-all route to ci-bot.
    assert out.strip() == "3 deliveries created for 2 event(s)"
    assert list(
        Delivery.objects.filter(event=second).values_list("destination__name", flat=True)
    ) == ["ci-bot"]


def test_replay_of_an_unknown_event_is_an_error(routed):
    with pytest.raises(CommandError, match="no such event: evt_nope"):
        run("replay", routed["event"].pk, "evt_nope")
    assert Delivery.objects.count() == 2


def test_replay_to_an_unknown_destination_is_an_error(routed):
    with pytest.raises(CommandError, match="no destination named 'nope'"):
        run("replay", routed["event"].pk, "--destination", "nope")
    assert Delivery.objects.count() == 2


def test_replay_needs_event_ids_or_dead():
    with pytest.raises(CommandError, match="give at least one event id"):
        run("replay")


def test_replay_with_both_event_ids_and_dead_is_an_error(routed):
    with pytest.raises(CommandError, match="give event ids or --dead, not both"):
        run("replay", routed["event"].pk, "--dead", "--since", "1h")
    assert Delivery.objects.count() == 2


def test_since_goes_with_dead(routed):
    with pytest.raises(CommandError, match="--since goes with --dead"):
        run("replay", routed["event"].pk, "--since", "1h")
    assert Delivery.objects.count() == 2


def make_dead(event: Event, destination: Destination, died: datetime) -> Delivery:
    return Delivery.objects.create(
        event=event,
        destination=destination,
        state=DeliveryState.DEAD,
        attempts=10,
        next_attempt_at=died,
        created_at=died - timedelta(hours=1),
        completed_at=died,
        last_status_code=500,
    )


def another_event(like: Event, name: str = "push") -> Event:
    return Event.objects.create(
        source=like.source,
        event_name=name,
        headers={},
        body=b'{"event_name": "push"}',
        received_at=timezone.now(),
    )


def test_replay_dead_since_replays_recent_dead_deliveries_once(routed):
    event = routed["event"]
    ci, audit = Destination.objects.get(name="ci-bot"), Destination.objects.get(name="audit")
    now = timezone.now()
    recent = make_dead(event, ci, now - timedelta(minutes=10))
    recent_audit = make_dead(event, audit, now - timedelta(minutes=20))
    # Another event's: a dead delivery of the same event to the same destination would
    # not be replayed while the replay of ``recent`` is pending.
    old = make_dead(another_event(event), ci, now - timedelta(hours=3))

    out = run("replay", "--dead", "--since", "1h")

    assert out.strip() == "2 dead deliveries replayed"
    replays = {d.replay_of_id: d for d in Delivery.objects.filter(replay_of__isnull=False)}
    assert set(replays) == {recent.pk, recent_audit.pk}
    assert replays[recent.pk].destination_id == ci.pk
    assert replays[recent.pk].event_id == event.pk
    assert replays[recent.pk].state == DeliveryState.PENDING
    assert replays[recent.pk].pk not in {recent.pk, recent_audit.pk, old.pk}
    # The originals are left as they were.
    recent.refresh_from_db()
    assert (recent.state, recent.attempts) == (DeliveryState.DEAD, 10)

    # The zero is explained.
    again = run("replay", "--dead", "--since", "1h").splitlines()
    assert again[0] == "0 dead deliveries replayed"
    assert re.fullmatch(
        r"2 dead deliveries since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC already replayed "
        r"\(--force to replay again\)",
        again[1],
    ), again
    assert len(again) == 2
    assert Delivery.objects.filter(replay_of__isnull=False).count() == 2

    # A wider window reaches the old one, still not the ones already replayed.
    wider = run("replay", "--dead", "--since", "1d").splitlines()
    assert wider[0] == "1 dead deliveries replayed"
    assert wider[1].startswith("2 dead deliveries since ")
    assert Delivery.objects.get(replay_of=old).destination_id == ci.pk


def test_replay_dead_to_one_destination(routed):
    event = routed["event"]
    ci, audit = Destination.objects.get(name="ci-bot"), Destination.objects.get(name="audit")
    died = timezone.now() - timedelta(minutes=5)
    make_dead(event, ci, died)
    to_audit = make_dead(event, audit, died)

    out = run("replay", "--dead", "--since", "30m", "--destination", "audit")

    assert out.strip() == "1 dead deliveries replayed"
    assert list(Delivery.objects.filter(replay_of__isnull=False)) == [
        Delivery.objects.get(replay_of=to_audit)
    ]


def test_replay_dead_since_an_iso_time(routed):
    event = routed["event"]
    ci = Destination.objects.get(name="ci-bot")
    now = timezone.now()
    make_dead(event, ci, now - timedelta(minutes=90))
    newer = make_dead(event, ci, now - timedelta(minutes=30))
    since = (now - timedelta(hours=1)).astimezone(UTC).replace(tzinfo=None)

    out = run("replay", "--dead", "--since", since.isoformat(timespec="seconds"))

    assert out.strip() == "1 dead deliveries replayed"
    assert Delivery.objects.get(replay_of__isnull=False).replay_of_id == newer.pk


@pytest.mark.parametrize(
    ("raw", "age"),
    [
        ("30m", timedelta(minutes=30)),
        ("6h", timedelta(hours=6)),
        ("2d", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
    ],
)
def test_since_accepts_an_age(raw: str, age: timedelta):
    expected = timezone.now() - age
    assert abs(parse_since(raw) - expected) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-20T08:00", datetime(2026, 11, 20, 8, 0, tzinfo=UTC)),
        ("2026-11-20T08:00:30+02:00", datetime(2026, 11, 20, 6, 0, 30, tzinfo=UTC)),
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
    ],
)
def test_since_accepts_an_iso_time_in_utc_unless_it_says_otherwise(raw: str, expected):
    assert parse_since(raw) == expected


@pytest.mark.parametrize("raw", ["yesterday", "6 hours", "6w", "2026-13-40", "", "-1h"])
def test_since_rejects_anything_else(raw: str):
    with pytest.raises(CommandError, match="expected an ISO date/time"):
        parse_since(raw)


def test_replay_dead_with_a_garbage_since_is_an_error(routed):
    with pytest.raises(CommandError, match=r"--since 'soon': expected an ISO date/time"):
        run("replay", "--dead", "--since", "soon")


# -- replay: safe to repeat, --force, links, every zero explained -------------------------


def new_deliveries(routed: dict[str, Any]) -> list[Delivery]:
    return list(
        Delivery.objects.exclude(pk__in=[d.pk for d in routed["originals"]]).order_by(
            "created_at", "pk"
        )
    )


def test_replaying_an_event_twice_creates_one_delivery_per_destination(routed):
    event = routed["event"]
    run("replay", event.pk)
    first = {d.destination.name: d.pk for d in new_deliveries(routed)}
    assert set(first) == {"ci-bot", "audit"}

    out = run("replay", event.pk).splitlines()

    assert out == [
        "0 deliveries created for 1 event(s)",
        f"{event.pk} → audit: {first['audit']} is still pending (--force to replay anyway)",
        f"{event.pk} → ci-bot: {first['ci-bot']} is still pending (--force to replay anyway)",
    ]
    assert len(new_deliveries(routed)) == 2


def test_replay_with_force_creates_another_copy(routed):
    event = routed["event"]
    run("replay", event.pk, "--destination", "audit")

    out = run("replay", event.pk, "--destination", "audit", "--force")

    assert out.strip() == "1 deliveries created for 1 event(s)"
    copies = [d for d in new_deliveries(routed) if d.destination.name == "audit"]
    assert len(copies) == 2
    assert copies[0].pk != copies[1].pk


def test_an_event_replay_points_back_at_the_latest_delivery_to_that_destination(routed):
    event, originals = routed["event"], routed["originals"]
    original = {d.destination.name: d for d in originals}

    run("replay", event.pk)
    first = {d.destination.name: d for d in new_deliveries(routed)}
    assert {name: d.replay_of_id for name, d in first.items()} == {
        name: d.pk for name, d in original.items()
    }
    run("replay", event.pk, "--destination", "ci-bot", "--force")

    (second,) = [d for d in new_deliveries(routed) if d.pk not in {x.pk for x in first.values()}]
    assert second.replay_of_id == first["ci-bot"].pk
    assert list(original["ci-bot"].replays.values_list("pk", flat=True)) == [first["ci-bot"].pk]


def test_an_event_replay_to_a_destination_never_delivered_points_back_at_nothing(routed):
    event = another_event(routed["event"])

    assert run("replay", event.pk).strip() == "2 deliveries created for 1 event(s)"
    assert not Delivery.objects.filter(event=event, replay_of__isnull=False).exists()


def test_replay_to_a_destination_no_route_leads_to_is_refused_and_says_why(routed):
    event = routed["event"]
    Destination.objects.create(name="elsewhere", url="https://elsewhere.example.com/")

    with pytest.raises(CommandError) as info:
        run("replay", event.pk, "--destination", "elsewhere")

    assert str(info.value).splitlines() == [
        "nothing replayed:",
        f"{event.pk} → elsewhere: no route from source 'gitlab' leads to 'elsewhere' "
        "(use --force to replay anyway)",
    ]
    assert len(new_deliveries(routed)) == 0


def test_replay_to_a_destination_without_a_route_is_allowed_with_force(routed):
    event = routed["event"]
    Route.objects.filter(destination__name="audit").delete()  # the operator removed it

    out = run("replay", event.pk, "--destination", "audit", "--force")

    assert out.strip() == "1 deliveries created for 1 event(s)"
    (replay,) = new_deliveries(routed)
    assert replay.destination.name == "audit"
    assert replay.replay_of_id == routed["originals"][0].pk


def test_replay_by_event_skips_a_destination_whose_route_was_removed_and_says_so(routed):
    event = routed["event"]
    Route.objects.filter(destination__name="audit").delete()

    out = run("replay", event.pk).splitlines()

    assert out == [
        "1 deliveries created for 1 event(s)",
        f"{event.pk} → audit: no route from source 'gitlab' leads to 'audit' "
        "(use --force to replay anyway)",
    ]
    assert [d.destination.name for d in new_deliveries(routed)] == ["ci-bot"]


def test_replay_to_a_destination_whose_route_takes_other_events_says_which(routed):
    event = another_event(routed["event"], name="merge_request")

    with pytest.raises(CommandError) as info:
        run("replay", event.pk, "--destination", "audit")

    assert (
        f"{event.pk} → audit: the route from 'gitlab' to 'audit' takes only push, "
        "not 'merge_request' (use --force to replay anyway)"
    ) in str(info.value)


def test_replay_of_an_event_no_route_takes_says_why(routed):
    Route.objects.all().delete()
    event = another_event(routed["event"], name="tag_push")

    with pytest.raises(CommandError) as info:
        run("replay", event.pk)

    assert str(info.value).splitlines()[1] == (
        f"{event.pk}: no route of source 'gitlab' takes 'tag_push' and it was never "
        "delivered (name one with --destination NAME --force)"
    )
    run("replay", event.pk, "--destination", "ci-bot", "--force")
    assert Delivery.objects.filter(event=event, destination__name="ci-bot").count() == 1


def test_replay_of_some_new_and_some_pending_targets_exits_zero(routed):
    event = routed["event"]
    run("replay", event.pk, "--destination", "audit")

    out = run("replay", event.pk).splitlines()

    assert out[0] == "1 deliveries created for 1 event(s)"
    assert out[1].startswith(f"{event.pk} → audit: msg_")
    assert len(new_deliveries(routed)) == 2


def test_replaying_a_delivery_twice_creates_one_copy_unless_forced(routed):
    original = routed["originals"][0]

    assert run("replay", original.pk).strip() == "1 deliveries created for 1 delivery"
    (replay,) = new_deliveries(routed)
    assert replay.replay_of_id == original.pk

    out = run("replay", original.pk).splitlines()
    assert out == [
        "0 deliveries created for 1 delivery",
        f"{original.pk}: already replayed as {replay.pk} (pending) (--force to replay again)",
    ]
    assert len(new_deliveries(routed)) == 1

    assert run("replay", original.pk, "--force").strip() == "1 deliveries created for 1 delivery"
    assert original.replays.count() == 2


def test_replaying_a_pending_delivery_is_skipped(routed):
    run("replay", routed["event"].pk, "--destination", "audit")
    (pending,) = new_deliveries(routed)

    out = run("replay", pending.pk).splitlines()

    assert out[1] == f"{pending.pk}: still pending (--force to replay anyway)"


def test_replay_of_an_unknown_delivery_is_an_error(routed):
    with pytest.raises(CommandError, match="no such delivery: msg_nope"):
        run("replay", routed["originals"][0].pk, "msg_nope")
    assert Delivery.objects.count() == 2


def test_replay_dead_without_since_replays_every_dead_delivery_not_yet_replayed(routed):
    event = routed["event"]
    ci, audit = Destination.objects.get(name="ci-bot"), Destination.objects.get(name="audit")
    now = timezone.now()
    dead = [
        make_dead(event, ci, now - timedelta(days=30)),
        make_dead(another_event(event), audit, now - timedelta(minutes=1)),
    ]

    assert run("replay", "--dead").strip() == "2 dead deliveries replayed"
    assert set(
        Delivery.objects.filter(replay_of__isnull=False).values_list("replay_of", flat=True)
    ) == {d.pk for d in dead}

    again = run("replay", "--dead").splitlines()
    assert again == [
        "0 dead deliveries replayed",
        "2 dead deliveries already replayed (--force to replay again)",
    ]

    assert run("replay", "--dead", "--force").strip().startswith("2 dead deliveries replayed")
    assert Delivery.objects.filter(replay_of__isnull=False).count() == 4


def test_replay_dead_with_nothing_dead_says_so(routed):
    assert run("replay", "--dead").splitlines() == [
        "0 dead deliveries replayed",
        "no dead deliveries",
    ]
    assert run("replay", "--dead", "--destination", "audit").splitlines()[1] == (
        "no dead deliveries to 'audit'"
    )


def test_replay_dead_skips_one_whose_event_is_pending_there_already(routed):
    event = routed["event"]
    dead = make_dead(event, Destination.objects.get(name="audit"), timezone.now())
    run("replay", event.pk, "--destination", "audit")
    (pending,) = Delivery.objects.filter(destination__name="audit", state=DeliveryState.PENDING)

    out = run("replay", "--dead").splitlines()

    assert out == [
        "0 dead deliveries replayed",
        f"{dead.pk}: {pending.pk}, a delivery of {event.pk} to 'audit', is still pending "
        "(--force to replay anyway)",
    ]


def test_replay_to_a_paused_destination_says_the_new_delivery_waits(routed):
    Destination.objects.filter(name="audit").update(paused=True, paused_reason="maintenance")

    out = run("replay", routed["event"].pk).splitlines()

    assert out == [
        "2 deliveries created for 1 event(s)",
        "1 new delivery waits: 'audit' is paused (maintenance)",
    ]


def test_replay_lists_what_it_created_with_verbosity_2(routed):
    event, originals = routed["event"], routed["originals"]

    out = run("replay", event.pk, "--destination", "audit", "-v", "2").splitlines()

    (replay,) = new_deliveries(routed)
    assert out == [
        "1 deliveries created for 1 event(s)",
        f"{replay.pk}: {event.pk} → audit (replay of {originals[0].pk})",
    ]


# -- destination --------------------------------------------------------------------------


def pending_to(name: str, count: int) -> None:
    destination = Destination.objects.get(name=name)
    source = Source.objects.get(slug="gitlab")
    now = timezone.now()
    for _ in range(count):
        event = Event.objects.create(
            source=source, event_name="push", headers={}, body=b"{}", received_at=now
        )
        Delivery.objects.create(
            event=event, destination=destination, next_attempt_at=now, created_at=now
        )


def test_destination_pause_list_and_resume(config_path: Path):
    run("sync_config", str(config_path))
    pending_to("ci-bot", 2)

    out = run("destination", "pause", "ci-bot", "--reason", "receiver maintenance")

    assert out.strip() == "'ci-bot' paused; 2 pending deliveries wait until it is resumed"
    ci = Destination.objects.get(name="ci-bot")
    assert (ci.paused, ci.paused_reason) == (True, "receiver maintenance")
    since = f"{ci.paused_at:%Y-%m-%d %H:%M:%S} UTC"
    assert run("destination", "pause", "ci-bot").strip() == (
        f"'ci-bot' is already paused since {since} (receiver maintenance)"
    )
    assert run("destination", "list").splitlines() == [
        "NAME    PENDING  STATE",
        "audit         0  active  [config file]",
        f"ci-bot        2  paused since {since} (receiver maintenance)  [config file]",
    ]

    out = run("destination", "resume", "ci-bot")

    assert out.strip() == "'ci-bot' resumed; 2 pending deliveries are sent, oldest first"
    ci.refresh_from_db()
    assert (ci.paused, ci.paused_at, ci.paused_reason) == (False, None, "")
    assert run("destination", "resume", "ci-bot").strip() == "'ci-bot' is not paused (active)"


def test_destination_enable_after_a_410(config_path: Path):
    run("sync_config", str(config_path))
    reason = "410 Gone from the receiver at 2026-11-23 10:00:00 UTC"
    Destination.objects.filter(name="audit").update(enabled=False, disabled_reason=reason)
    pending_to("audit", 1)
    assert run("destination", "list").splitlines()[1] == (
        f"audit         1  disabled ({reason})  [config file]"
    )

    out = run("destination", "enable", "audit")

    assert out.strip() == "'audit' enabled; 1 pending delivery is sent, oldest first"
    audit = Destination.objects.get(name="audit")
    assert (audit.enabled, audit.disabled_reason) == (True, "")
    assert run("destination", "enable", "audit").strip() == "'audit' is already enabled (active)"


def test_destination_enable_refuses_one_the_config_file_disabled(config_path: Path):
    config_path.write_text(CONFIG.replace('name = "audit"', 'name = "audit"\nenabled = false'))
    run("sync_config", str(config_path))

    with pytest.raises(CommandError) as info:
        run("destination", "enable", "audit")

    assert str(info.value) == (
        "'audit' is disabled in the config file (enabled = false): change it there; "
        "the next sync would disable it again"
    )
    assert Destination.objects.get(name="audit").enabled is False


@pytest.mark.parametrize("action", ["pause", "resume", "enable"])
def test_destination_with_an_unknown_name_is_an_error(action: str):
    with pytest.raises(CommandError, match="no destination named 'nope'"):
        run("destination", action, "nope")


def test_destination_needs_an_action():
    with pytest.raises(CommandError, match="the following arguments are required: ACTION"):
        run("destination")


def test_destination_list_without_destinations():
    assert run("destination", "list").strip() == "no destinations"


# -- dispatch -----------------------------------------------------------------------------


def test_dispatch_rejects_a_concurrency_below_one():
    with pytest.raises(CommandError, match="--concurrency must be at least 1"):
        run("dispatch", "--concurrency", "0")


def dispatch_process(tmp_path: Path, env: dict[str, str]) -> tuple[int, str]:
    log_path = tmp_path / "dispatch.log"
    process = spawn(
        [sys.executable, "manage.py", "dispatch", "--until-empty", "--poll-interval", "0.1"],
        env,
        log_path,
    )
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(f"dispatch did not exit:\n{log_path.read_text()}") from None
    return process.returncode, log_path.read_text(errors="replace")


def test_dispatch_until_empty_delivers_pending_deliveries_and_exits(receiver, tmp_path: Path):
    target = receiver()
    source = Source.objects.create(slug="src")
    now = timezone.now()
    event = Event.objects.create(
        source=source,
        event_name="push",
        content_type="application/json",
        headers={},
        body=b'{"event_name": "push"}',
        received_at=now,
    )
    deliveries = [
        Delivery.objects.create(
            event=event,
            destination=Destination.objects.create(name=name, url=target.url(f"/{name}")),
            next_attempt_at=now,
            created_at=now,
        )
        for name in ("one", "two")
    ]

    code, log = dispatch_process(tmp_path, {"HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true"})

    assert code == 0, log
    (stopped,) = [line for line in log.splitlines() if " stopped: " in line]
    assert stopped.endswith("stopped: 2 delivered, 0 to retry, 0 dead, 0 released")
    assert sum(" running (concurrency " in line for line in log.splitlines()) == 1
    got = {r.path: r for r in target.received()}
    assert set(got) == {"/one", "/two"}
    for delivery in deliveries:
        request = got[f"/{delivery.destination.name}"]
        assert request.webhook_id == delivery.pk
        assert request.body == b'{"event_name": "push"}'
        assert request.headers["x-hookway-event"] == "push"
        delivery.refresh_from_db()
        assert (delivery.state, delivery.attempts) == (DeliveryState.SUCCEEDED, 1)
        assert delivery.last_status_code == 200
        assert Attempt.objects.get(delivery=delivery).outcome == "success"


def test_dispatch_refuses_a_loopback_receiver_without_the_private_opt_in(receiver, tmp_path: Path):
    target = receiver()
    source = Source.objects.create(slug="src")
    now = timezone.now()
    event = Event.objects.create(
        source=source, event_name="push", headers={}, body=b"{}", received_at=now
    )
    delivery = Delivery.objects.create(
        event=event,
        destination=Destination.objects.create(name="local", url=target.url()),
        next_attempt_at=now,
        created_at=now,
    )

    code, log = dispatch_process(tmp_path, {"HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "false"})

    assert code == 0, log
    assert target.received() == []
    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.DEAD
    assert delivery.last_error


def test_dispatch_with_an_invalid_config_file_exits_with_the_message(tmp_path: Path):
    path = tmp_path / "hookway.toml"
    path.write_text('[[sources]]\nslug = "Bad Slug"\n')

    code, log = dispatch_process(tmp_path, {"HOOKWAY_CONFIG": str(path)})

    assert code != 0
    assert "sources[0].slug: 'Bad Slug' must be 1-63 lowercase letters" in log
