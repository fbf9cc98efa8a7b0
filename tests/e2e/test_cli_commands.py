"""The one-shot commands against a real server: ``send`` signs for every scheme so that
ingest accepts it (and a wrong secret shows ingest's 401), ``replay --dry-run`` counts
what ``replay`` then does, ``events``, ``destinations``, and every documented exit code
(docs/cli.md, "Exit codes")."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookway.models import Delivery, Destination, Event, Route, Source
from hookway.store import apikeys
from tests.conftest import free_port
from tests.e2e.cli_helpers import STREAM_ENV, hookway, post, wait_for
from tests.receivers import Reply

# Once, in the SQLite run: the command line talks HTTP; the API under it is tested on both databases.
pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True), pytest.mark.sqlite_only]

WHSEC = "whsec_" + base64.b64encode(b"standard webhooks key for the cli").decode()
SECRETS = {
    "none": None,
    "token": "tok-3f9a",
    "hmac-sha256": "hmac secret",
    "github": "It's a Secret to Everybody",
    "gitlab": "gitlab-token",
    "stripe": "whsec_stripe_endpoint_secret",
    "standard-webhooks": WHSEC,
}


@pytest.fixture
def keys(transactional_db: None) -> dict[str, str]:
    return {
        "read": apikeys.create("cli-read", "read")[1],
        "write": apikeys.create("cli-write", "write")[1],
    }


def test_send_signs_for_every_scheme_so_that_ingest_accepts_it(
    start_server: Callable[..., Any], keys: dict[str, str], tmp_path: Path
) -> None:
    for scheme, secret in SECRETS.items():
        Source.objects.create(
            slug=f"src-{scheme}", verify=scheme, secrets=[secret] if secret else []
        )
    server = start_server()
    data = tmp_path / "body.json"
    data.write_bytes(b'{"object": {"id": 7},  "note": "spaced as sent"}')

    for scheme, secret in SECRETS.items():
        args = ["send", f"src-{scheme}", "--event", f"thing.{scheme}", "--data", str(data)]
        args += ["--server", server.url, "--key", keys["read"], "--json"]
        if secret:
            args += ["--secret", secret]
        done = hookway(tmp_path, *args)

        assert done.returncode == 0, (scheme, done.stdout, done.stderr)
        answer = json.loads(done.stdout)
        assert (answer["status"], answer["scheme"]) == (202, scheme)
        event = Event.objects.get(pk=answer["id"])
        assert event.event_name == f"thing.{scheme}"
        assert event.source.slug == f"src-{scheme}"
        body = json.loads(bytes(event.body))
        assert body["object"] == {"id": 7}
        if scheme not in ("stripe", "standard-webhooks"):
            # Only the schemes that read the event name from the body alone change it.
            assert bytes(event.body) == data.read_bytes()


@pytest.mark.parametrize("scheme", [s for s in SECRETS if s != "none"])
def test_send_with_a_wrong_secret_shows_ingests_401_and_exits_4(
    start_server: Callable[..., Any], keys: dict[str, str], tmp_path: Path, scheme: str
) -> None:
    Source.objects.create(slug="guarded", verify=scheme, secrets=[SECRETS[scheme]])
    server = start_server()
    wrong = WHSEC[:-4] + "AAA=" if scheme == "standard-webhooks" else "not-the-secret"

    done = hookway(
        tmp_path, "send", "guarded", "--event", "x", "--secret", wrong,
        "--server", server.url, "--key", keys["read"],
    )  # fmt: skip

    assert done.returncode == 4
    assert "ingest answered 401 unauthorized" in done.stderr
    assert "does not match" in done.stderr  # ingest's own words
    assert "matches none of source guarded's" in done.stderr  # the fingerprint, before sending
    assert not Event.objects.exists()


def test_send_takes_the_scheme_without_a_key_and_the_secret_from_the_environment(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    Source.objects.create(slug="gh", verify="github", secrets=["env-secret"])
    server = start_server()

    done = hookway(
        tmp_path, "send", "gh", "--scheme", "github", "--event", "push", "--data", "-",
        "--server", server.url, input=b'{"ref": "main"}', HOOKWAY_SEND_SECRET="env-secret",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "202 Accepted" in done.stdout
    event = Event.objects.get()
    assert (event.event_name, bytes(event.body)) == ("push", b'{"ref": "main"}')


def test_send_without_the_secret_a_scheme_needs_is_a_usage_error(
    start_server: Callable[..., Any], keys: dict[str, str], tmp_path: Path
) -> None:
    Source.objects.create(slug="gl", verify="gitlab", secrets=["t"])
    server = start_server()

    done = hookway(tmp_path, "send", "gl", "--server", server.url, "--key", keys["read"])

    assert done.returncode == 2
    assert "verifies with gitlab: give its secret" in done.stderr
    assert not Event.objects.exists()


def make_dead_deliveries(receiver: Callable[..., Any]) -> None:
    """A source routed to two destinations that answer 500, tried once each (so dead)."""
    source = Source.objects.create(slug="shop")
    refusing = receiver(lambda request, n: Reply(status=500))
    for name in ("billing", "audit"):
        target = Destination.objects.create(name=name, url=refusing.url(f"/{name}"), max_attempts=1)
        Route.objects.create(source=source, destination=target)


def test_replay_dry_run_counts_what_replay_then_replays(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    keys: dict[str, str],
    tmp_path: Path,
) -> None:
    make_dead_deliveries(receiver)
    server = start_server()
    ids = [post(server.url, "shop", {"type": "order.paid", "n": n}) for n in range(3)]
    wait_for(lambda: Delivery.objects.filter(state="dead").count() == 6, "six dead deliveries")
    common = ["--server", server.url, "--key", keys["write"]]
    # Replays of billing wait, so that they don't die again and count as dead themselves.
    httpx.post(
        f"{server.url}/api/v1/destinations/billing/pause",
        headers={"Authorization": f"Bearer {keys['write']}"},
        json={"reason": "hold the replays"},
        timeout=15,
    ).raise_for_status()

    dry = hookway(
        tmp_path, "replay", "--dead", "--destination", "billing", "--dry-run", "--json", *common
    )
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert (planned["dry_run"], planned["replayed"], planned["events"]) == (True, 3, 3)
    assert Delivery.objects.count() == 6  # a dry run changes nothing

    done = hookway(tmp_path, "replay", "--dead", "--destination", "billing", *common)
    assert done.returncode == 0, done.stderr
    assert "replayed 3 dead deliveries to billing of 3 events" in done.stdout
    assert "3/3" in done.stderr  # the progress bar, finished
    replays = Delivery.objects.filter(replay_of__isnull=False)
    assert sorted(d.event_id for d in replays) == sorted(ids)
    assert {d.destination.name for d in replays} == {"billing"}

    again = hookway(
        tmp_path, "replay", "--dead", "--destination", "billing", "--dry-run", "--json", *common
    )
    answer = json.loads(again.stdout)
    assert answer["replayed"] == 0
    assert {s["kind"] for s in answer["skipped"]} == {"already_replayed"}


def test_replay_one_event_and_its_refusals(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    keys: dict[str, str],
    tmp_path: Path,
) -> None:
    make_dead_deliveries(receiver)
    server = start_server()
    event_id = post(server.url, "shop", {"type": "order.paid"})
    wait_for(lambda: Delivery.objects.filter(state="dead").count() == 2, "two dead deliveries")
    common = ["--server", server.url, "--key", keys["write"]]

    done = hookway(tmp_path, "replay", event_id, "--destination", "audit", "--json", *common)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert [c["destination"] for c in answer["created"]] == ["audit"]

    read_only = hookway(tmp_path, "replay", event_id, "--server", server.url, "--key", keys["read"])
    assert read_only.returncode == 4
    assert "write" in read_only.stderr

    unknown = hookway(tmp_path, "replay", "evt_0000000000000000000000nope", *common)
    assert unknown.returncode == 5
    assert "no event" in unknown.stderr

    neither = hookway(tmp_path, "replay", *common)
    assert neither.returncode == 2
    assert "either an event ID or --dead" in neither.stderr


def test_events_show_and_tail_and_destinations(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    keys: dict[str, str],
    tmp_path: Path,
) -> None:
    source = Source.objects.create(slug="demo")
    ok = receiver()
    Route.objects.create(
        source=source, destination=Destination.objects.create(name="worker", url=ok.url())
    )
    Destination.objects.create(name="gone", url=f"http://127.0.0.1:{free_port()}/x")
    server = start_server(STREAM_ENV)
    ids = [
        post(server.url, "demo", {"type": "push", "n": n}, **{"X-Trace": f"t{n}"}) for n in range(3)
    ]
    wait_for(lambda: Delivery.objects.filter(state="succeeded").count() == 3, "three deliveries")
    read = ["--server", server.url, "--key", keys["read"]]
    write = ["--server", server.url, "--key", keys["write"]]

    shown = hookway(tmp_path, "events", "show", ids[0], *read)
    assert shown.returncode == 0, shown.stderr
    for text in (
        ids[0],
        "demo",
        "push",
        "X-Trace",
        "t0",
        '"n": 0',
        "worker",
        "delivered",
        "200 OK",
    ):
        assert text in shown.stdout
    as_json = json.loads(hookway(tmp_path, "events", "show", ids[0], "--json", *read).stdout)
    assert as_json["payload"] == {"type": "push", "n": 0}

    listed = hookway(tmp_path, "events", "tail", "--no-follow", "-n", "2", "--json", *read)
    assert [e["id"] for e in json.loads(listed.stdout)] == [ids[2], ids[1]]
    table = hookway(tmp_path, "events", "tail", "--no-follow", *read)
    assert all(event_id in table.stdout for event_id in ids)

    destinations = hookway(tmp_path, "destinations", "--json", *read)
    assert {d["name"] for d in json.loads(destinations.stdout)} == {"worker", "gone"}
    assert "worker" in hookway(tmp_path, "destinations", *read).stdout

    tested = hookway(tmp_path, "destinations", "test", "worker", *write)
    assert tested.returncode == 0, tested.stderr
    assert "worker answered 200 OK" in tested.stdout
    failed = hookway(tmp_path, "destinations", "test", "gone", "--json", *write)
    assert failed.returncode == 1
    assert json.loads(failed.stdout)["error"] == "destination_unreachable"
    missing = hookway(tmp_path, "destinations", "test", "nope", *write)
    assert missing.returncode == 5


def test_events_tail_follows_new_events_and_outcomes(
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
    keys: dict[str, str],
    tmp_path: Path,
) -> None:
    import subprocess

    from tests.e2e.cli_helpers import HOOKWAY, cli_env

    source = Source.objects.create(slug="demo")
    Route.objects.create(
        source=source, destination=Destination.objects.create(name="worker", url=receiver().url())
    )
    server = start_server(STREAM_ENV)
    old = post(server.url, "demo", {"type": "old"})
    process = subprocess.Popen(
        [
            HOOKWAY,
            "events",
            "tail",
            "-n",
            "5",
            "--json",
            "--server",
            server.url,
            "--key",
            keys["read"],
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=cli_env(tmp_path),
    )
    try:
        assert process.stdout is not None
        first = json.loads(process.stdout.readline())
        assert (first["type"], first["id"]) == ("event", old)
        new = post(server.url, "demo", {"type": "new"})
        seen: list[dict[str, Any]] = []
        while not any(m["type"] == "delivery" and m["event"] == new for m in seen):
            seen.append(json.loads(process.stdout.readline()))
        assert any(m["type"] == "event" and m["id"] == new for m in seen)
        assert [m["id"] for m in seen if m["type"] == "event"].count(old) == 0  # not twice
    finally:
        process.send_signal(2)
        assert process.wait(20) == 0
        process.stdout.close()  # type: ignore[union-attr]


COMMANDS = [
    ["events", "tail", "--no-follow"],
    ["events", "show", "evt_x"],
    ["destinations"],
    ["replay", "--dead", "--dry-run"],
    ["listen", "--forward-to", "http://127.0.0.1:9/x"],
]


def test_exit_codes_bad_key_unreachable_and_no_server(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    server = start_server(STREAM_ENV)
    nowhere = f"http://127.0.0.1:{free_port()}"

    for command in COMMANDS:
        bad_key = hookway(tmp_path, *command, "--server", server.url, "--key", "hwk_not_a_key")
        assert bad_key.returncode == 4, (command, bad_key.stderr)
        assert "refused the API key" in bad_key.stderr

        unreachable = hookway(tmp_path, *command, "--server", nowhere, "--key", "k", "--json")
        assert unreachable.returncode == 3, (command, unreachable.stdout)
        assert json.loads(unreachable.stdout)["error"] == "unreachable"

        no_server = hookway(tmp_path, *command, "--key", "k")
        assert no_server.returncode == 2, (command, no_server.stderr)
        assert "no Hookway server given" in no_server.stderr


def test_exit_codes_not_found_and_usage(
    start_server: Callable[..., Any], keys: dict[str, str], tmp_path: Path
) -> None:
    server = start_server()
    common = ["--server", server.url, "--key", keys["read"]]

    assert (
        hookway(tmp_path, "events", "show", "evt_01jdzzzzzzzzzzzzzzzzzzzzzz", *common).returncode
        == 5
    )
    assert hookway(tmp_path, "send", "no-such-source", *common).returncode == 5
    # Ingest's 404 for a source the scheme was given for (no API lookup).
    assert hookway(tmp_path, "send", "nope", "--scheme", "none", *common).returncode == 5
    assert hookway(tmp_path, "listen", *common).returncode == 2  # no --forward-to
    assert hookway(tmp_path, "events", "tail", "--bogus", *common).returncode == 2
    missing = hookway(tmp_path, "send", "x", "--scheme", "none", "--data", "/no/such/file", *common)
    assert missing.returncode == 2
    assert "can't read /no/such/file" in missing.stderr
    profile = hookway(tmp_path, "destinations", "--profile", "nope", *common)
    assert profile.returncode == 2
    assert "no profile 'nope'" in profile.stderr


def test_the_profile_file_and_the_environment_give_server_and_key(
    start_server: Callable[..., Any], keys: dict[str, str], tmp_path: Path
) -> None:
    server = start_server()
    config = tmp_path / "config.toml"
    config.write_text(
        f'default_profile = "local"\n[profiles.local]\nurl = "{server.url}"\n'
        f'api_key = "env:LOCAL_KEY"\n[profiles.broken]\nurl = "{server.url}"\napi_key = "hwk_x"\n'
    )

    from_profile = hookway(
        tmp_path, "destinations", "--json", HOOKWAY_CLI_CONFIG=str(config), LOCAL_KEY=keys["read"]
    )
    assert from_profile.returncode == 0, from_profile.stderr
    assert json.loads(from_profile.stdout) == []
    broken = hookway(
        tmp_path, "destinations", "--profile", "broken", HOOKWAY_CLI_CONFIG=str(config)
    )
    assert broken.returncode == 4
    from_env = hookway(
        tmp_path, "destinations", HOOKWAY_URL=server.url, HOOKWAY_API_KEY=keys["read"]
    )
    assert from_env.returncode == 0, from_env.stderr
