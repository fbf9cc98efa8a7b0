"""Secrets are write-only in the admin: source secrets and destination signing secrets are
shown as "set, fingerprint …" (env: references by name), replaced through a field that
never shows a value, and never appear in a page, for superusers or view-only staff, nor
in the admin's history."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client

from hookway.models import Destination, Source

ADMIN = "/admin/hookway"
SOURCE_LITERAL = "source-literal-secret-7c1e"
ENV_VALUE = "source-env-secret-value-93ab"
MANAGED_LITERAL = "managed-source-secret-55d0"
SIGNING = "whsec_" + base64.b64encode(b"destination-signing-key-000001").decode()
MANAGED_SIGNING = "whsec_" + base64.b64encode(b"managed-signing-key-0000000002").decode()
NEW_LITERAL = "replacement-secret-e4f2"
NEW_SIGNING = "whsec_" + base64.b64encode(b"replacement-signing-key-000003").decode()
BEARER = "bearer-token-value-6a1f"
BASIC_PASSWORD = "basic-password-90c3"
NEW_BEARER = "replacement-bearer-77b2"
NEW_BASIC_PASSWORD = "replacement-basic-pw-1c9e"
EVERY_SECRET = [
    SOURCE_LITERAL,
    ENV_VALUE,
    MANAGED_LITERAL,
    SIGNING,
    MANAGED_SIGNING,
    NEW_LITERAL,
    NEW_SIGNING,
    BEARER,
    BASIC_PASSWORD,
    NEW_BEARER,
    NEW_BASIC_PASSWORD,
]


def fp(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def assert_no_secret(page: str) -> None:
    for secret in EVERY_SECRET:
        assert secret not in page, secret
        # Nor a recognisable piece of one (a JSON list, a truncated value).
        assert secret[:12] not in page, secret


@pytest.fixture
def records(db: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("HOOKWAY_TEST_GH_TOKEN", ENV_VALUE)
    return {
        "source": Source.objects.create(
            slug="gh", verify="github", secrets=[SOURCE_LITERAL, "env:HOOKWAY_TEST_GH_TOKEN"]
        ),
        "managed_source": Source.objects.create(
            slug="cfg", verify="token", secrets=[MANAGED_LITERAL], managed=True
        ),
        "destination": Destination.objects.create(
            name="ci", url="https://ci.example.com/hooks", signing_secret=SIGNING
        ),
        "managed_destination": Destination.objects.create(
            name="cfg-dest",
            url="https://cfg.example.com/",
            signing_secret=MANAGED_SIGNING,
            managed=True,
        ),
        "env_destination": Destination.objects.create(
            name="env-dest", url="https://env.example.com/", signing_secret="env:HOOKWAY_NO_SUCH"
        ),
    }


@pytest.fixture
def superuser(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


@pytest.fixture
def viewer(db: None) -> Client:
    user = User.objects.create_user("viewer", "viewer@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(codename__in=["view_source", "view_destination"])
    )
    client = Client()
    client.force_login(user)
    return client


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


SOURCE_SUMMARY = (
    f"2 secrets: set, fingerprint {fp(SOURCE_LITERAL)}; "
    f"env:HOOKWAY_TEST_GH_TOKEN (set, fingerprint {fp(ENV_VALUE)})"
)


# -- nothing shows a secret ---------------------------------------------------------------


@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_source_pages_show_fingerprints_never_secrets(request, records, who):
    client = request.getfixturevalue(who)
    source, managed = records["source"], records["managed_source"]

    listing = page(client, f"{ADMIN}/source/")
    change = page(client, f"{ADMIN}/source/{source.pk}/change/")
    managed_page = page(client, f"{ADMIN}/source/{managed.pk}/change/")

    for html in (listing, change, managed_page):
        assert_no_secret(html)
    assert SOURCE_SUMMARY in change
    assert SOURCE_SUMMARY in listing
    assert f"1 secret: set, fingerprint {fp(MANAGED_LITERAL)}" in managed_page


@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_destination_pages_show_fingerprints_never_secrets(request, records, who):
    client = request.getfixturevalue(who)

    listing = page(client, f"{ADMIN}/destination/")
    change = page(client, f"{ADMIN}/destination/{records['destination'].pk}/change/")
    managed = page(client, f"{ADMIN}/destination/{records['managed_destination'].pk}/change/")
    env = page(client, f"{ADMIN}/destination/{records['env_destination'].pk}/change/")

    for html in (listing, change, managed, env):
        assert_no_secret(html)
    assert f"set, fingerprint {fp(SIGNING)}" in change
    assert f"set, fingerprint {fp(MANAGED_SIGNING)}" in managed
    assert "env:HOOKWAY_NO_SUCH (not set)" in env
    assert f"set, fingerprint {fp(SIGNING)}" in listing


def test_a_view_only_user_gets_no_field_to_replace_secrets(viewer, records):
    change = page(viewer, f"{ADMIN}/source/{records['source'].pk}/change/")
    assert 'name="new_secrets"' not in change
    assert 'name="_save"' not in change


def test_a_managed_entry_offers_no_field_to_replace_its_secrets(superuser, records):
    source = page(superuser, f"{ADMIN}/source/{records['managed_source'].pk}/change/")
    destination = page(
        superuser, f"{ADMIN}/destination/{records['managed_destination'].pk}/change/"
    )

    assert 'name="new_secrets"' not in source
    assert 'name="clear_secrets"' not in source
    assert 'name="new_signing_secret"' not in destination


def test_a_managed_entrys_secrets_cannot_be_replaced_by_a_crafted_post(superuser, records):
    source = records["managed_source"]
    superuser.post(
        f"{ADMIN}/source/{source.pk}/change/",
        {"new_secrets": NEW_LITERAL, "clear_secrets": "on"},
    )
    source.refresh_from_db()
    assert source.secrets == [MANAGED_LITERAL]


# -- replacing --------------------------------------------------------------------------


def source_form(**overrides: str) -> dict[str, str]:
    return {
        "slug": "gh",
        "verify": "github",
        "max_body_bytes": "1048576",
        "enabled": "on",
        "new_secrets": "",
        **overrides,
    }


def destination_form(**overrides: str) -> dict[str, str]:
    return {
        "name": "ci",
        "url": "https://ci.example.com/hooks",
        "timeout_seconds": "15",
        "max_attempts": "10",
        "concurrency": "20",
        # The delivery policies' fields, as the form shows them (their defaults).
        "circuit_failures": "5",
        "circuit_cooldown_seconds": "30",
        "disable_after_seconds": "432000",
        "on_dead": "skip",  # the select always posts its choice
        "enabled": "on",
        "new_signing_secret": "",
        **overrides,
    }


def test_a_blank_field_keeps_the_current_secrets(superuser, records):
    source = records["source"]

    response = superuser.post(
        f"{ADMIN}/source/{source.pk}/change/", source_form(max_body_bytes="2048")
    )

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.max_body_bytes == 2048
    assert source.secrets == [SOURCE_LITERAL, "env:HOOKWAY_TEST_GH_TOKEN"]


def test_secrets_are_replaced_one_per_line(superuser, records):
    source = records["source"]

    response = superuser.post(
        f"{ADMIN}/source/{source.pk}/change/",
        source_form(new_secrets=f"  {NEW_LITERAL}  \r\n\r\nenv:HOOKWAY_TEST_GH_TOKEN\r\n"),
    )

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.secrets == [NEW_LITERAL, "env:HOOKWAY_TEST_GH_TOKEN"]
    assert_no_secret(page(superuser, response["Location"]))


def test_secrets_can_be_removed(superuser, records):
    source = records["source"]

    response = superuser.post(
        f"{ADMIN}/source/{source.pk}/change/", source_form(clear_secrets="on")
    )

    assert response.status_code == 302
    source.refresh_from_db()
    assert source.secrets == []


def test_replacing_and_removing_at_once_is_refused(superuser, records):
    source = records["source"]

    response = superuser.post(
        f"{ADMIN}/source/{source.pk}/change/",
        source_form(new_secrets=NEW_LITERAL, clear_secrets="on"),
    )

    assert response.status_code == 200
    assert "not both" in response.content.decode()
    source.refresh_from_db()
    assert source.secrets == [SOURCE_LITERAL, "env:HOOKWAY_TEST_GH_TOKEN"]


def test_an_env_reference_without_a_name_is_refused(superuser, records):
    source = records["source"]

    response = superuser.post(
        f"{ADMIN}/source/{source.pk}/change/", source_form(new_secrets="env:")
    )

    assert response.status_code == 200
    assert "needs a variable name" in response.content.decode()


def test_a_form_with_errors_does_not_echo_the_new_secrets(superuser, records):
    source, destination = records["source"], records["destination"]

    bad_source = superuser.post(
        f"{ADMIN}/source/{source.pk}/change/",
        source_form(slug="Not A Slug", new_secrets=NEW_LITERAL),
    )
    bad_destination = superuser.post(
        f"{ADMIN}/destination/{destination.pk}/change/",
        destination_form(url="https://ci.example.com:99999/", new_signing_secret=NEW_SIGNING),
    )

    for response in (bad_source, bad_destination):
        assert response.status_code == 200
        assert "errornote" in response.content.decode()
        assert_no_secret(response.content.decode())


def test_a_signing_secret_is_replaced_kept_or_removed(superuser, records):
    destination = records["destination"]
    url = f"{ADMIN}/destination/{destination.pk}/change/"

    assert superuser.post(url, destination_form(concurrency="5")).status_code == 302
    destination.refresh_from_db()
    assert (destination.signing_secret, destination.concurrency) == (SIGNING, 5)

    assert superuser.post(url, destination_form(new_signing_secret=NEW_SIGNING)).status_code == 302
    destination.refresh_from_db()
    assert destination.signing_secret == NEW_SIGNING

    response = superuser.post(url, destination_form(clear_signing_secret="on"))
    assert response.status_code == 302
    destination.refresh_from_db()
    assert destination.signing_secret == ""
    assert "not set" in page(superuser, url)


def test_entries_created_in_the_admin_get_their_secrets(superuser, db):
    source = superuser.post(
        f"{ADMIN}/source/add/", source_form(slug="manual", new_secrets=f"{NEW_LITERAL}\nenv:X")
    )
    destination = superuser.post(
        f"{ADMIN}/destination/add/", destination_form(name="new", new_signing_secret=NEW_SIGNING)
    )

    assert (source.status_code, destination.status_code) == (302, 302)
    assert Source.objects.get(slug="manual").secrets == [NEW_LITERAL, "env:X"]
    assert Destination.objects.get(name="new").signing_secret == NEW_SIGNING
    assert_no_secret(page(superuser, f"{ADMIN}/source/add/"))


def test_the_history_never_records_a_secret(superuser, records):
    source, destination = records["source"], records["destination"]
    superuser.post(f"{ADMIN}/source/{source.pk}/change/", source_form(new_secrets=NEW_LITERAL))
    superuser.post(
        f"{ADMIN}/destination/{destination.pk}/change/",
        destination_form(new_signing_secret=NEW_SIGNING),
    )
    superuser.post(f"{ADMIN}/source/add/", source_form(slug="manual", new_secrets=NEW_LITERAL))

    entries = list(LogEntry.objects.all())
    assert len(entries) == 3
    for entry in entries:
        assert_no_secret(f"{entry.change_message} {entry.object_repr} {entry}")
    assert_no_secret(page(superuser, f"{ADMIN}/source/{source.pk}/history/"))
    assert_no_secret(page(superuser, f"{ADMIN}/destination/{destination.pk}/history/"))
    assert_no_secret(page(superuser, "/admin/"))  # the recent actions list


@pytest.mark.parametrize("managed", [False, True])
@pytest.mark.parametrize("who", ["superuser", "viewer"])
def test_destination_auth_secrets_never_show(request, db, who: str, managed: bool) -> None:
    client = request.getfixturevalue(who)
    destination = Destination.objects.create(
        name="auth",
        url="https://auth.example.com/",
        bearer_token=BEARER,
        basic_auth=f"user:{BASIC_PASSWORD}",
        managed=managed,
    )
    listing = page(client, "/admin/hookway/destination/")
    change = page(client, f"/admin/hookway/destination/{destination.pk}/change/")
    for text in (listing, change):
        assert "bearer-token-value" not in text
        assert "basic-password" not in text
        assert_no_secret(text)
    assert f"set, fingerprint {fp(BEARER)}" in change
    assert f"user user, password set, fingerprint {fp(BASIC_PASSWORD)}" in change
    assert f"bearer token set, fingerprint {fp(BEARER)}" in listing
    if managed or who == "viewer":
        assert 'name="new_bearer_token"' not in change
        assert 'name="new_basic_auth"' not in change


def test_env_auth_references_are_shown_by_name(superuser, monkeypatch):
    monkeypatch.setenv("HOOKWAY_TEST_BASIC", f"ci:{BASIC_PASSWORD}")
    destination = Destination.objects.create(
        name="auth",
        url="https://auth.example.com/",
        bearer_token="env:HOOKWAY_NO_SUCH_TOKEN",
    )
    change = page(superuser, f"{ADMIN}/destination/{destination.pk}/change/")
    assert "env:HOOKWAY_NO_SUCH_TOKEN (not set)" in change

    destination.bearer_token, destination.basic_auth = "", "env:HOOKWAY_TEST_BASIC"
    destination.save()
    change = page(superuser, f"{ADMIN}/destination/{destination.pk}/change/")
    assert f"env:HOOKWAY_TEST_BASIC (set, fingerprint {fp('ci:' + BASIC_PASSWORD)})" in change
    assert_no_secret(change)


@pytest.fixture
def auth_destination(db: None) -> Destination:
    return Destination.objects.create(
        name="ci", url="https://ci.example.com/hooks", bearer_token=BEARER
    )


def test_a_bearer_token_is_replaced_kept_or_removed(superuser, auth_destination):
    url = f"{ADMIN}/destination/{auth_destination.pk}/change/"

    assert superuser.post(url, destination_form(concurrency="5")).status_code == 302
    auth_destination.refresh_from_db()
    assert (auth_destination.bearer_token, auth_destination.concurrency) == (BEARER, 5)

    assert superuser.post(url, destination_form(new_bearer_token=NEW_BEARER)).status_code == 302
    auth_destination.refresh_from_db()
    assert auth_destination.bearer_token == NEW_BEARER

    assert superuser.post(url, destination_form(clear_bearer_token="on")).status_code == 302
    auth_destination.refresh_from_db()
    assert auth_destination.bearer_token == ""


def test_basic_auth_replaces_a_removed_bearer_token(superuser, auth_destination):
    url = f"{ADMIN}/destination/{auth_destination.pk}/change/"

    response = superuser.post(
        url,
        destination_form(clear_bearer_token="on", new_basic_auth=f"ci:{NEW_BASIC_PASSWORD}"),
    )

    assert response.status_code == 302
    auth_destination.refresh_from_db()
    assert (auth_destination.bearer_token, auth_destination.basic_auth) == (
        "",
        f"ci:{NEW_BASIC_PASSWORD}",
    )
    assert_no_secret(page(superuser, url))

    superuser.post(url, destination_form(new_basic_auth="ci:env:HOOKWAY_TEST_PW"))
    auth_destination.refresh_from_db()
    assert auth_destination.basic_auth == "ci:env:HOOKWAY_TEST_PW"
    superuser.post(url, destination_form(clear_basic_auth="on"))
    auth_destination.refresh_from_db()
    assert auth_destination.basic_auth == ""


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"new_basic_auth": f"ci:{NEW_BASIC_PASSWORD}"}, "bearer token or basic auth, not both"),
        ({"headers": '{"Authorization": "env:X"}'}, "sets Authorization already"),
        ({"url": "https://bot:pw@ci.example.com/"}, "The URL carries user:password@"),
        ({"new_bearer_token": "two words"}, "without spaces"),
        ({"new_bearer_token": "env:"}, "needs a variable name"),
        ({"new_bearer_token": NEW_BEARER, "clear_bearer_token": "on"}, "not both"),
        ({"clear_bearer_token": "on", "new_basic_auth": "no-colon"}, "Expected user:password"),
        ({"clear_bearer_token": "on", "new_basic_auth": "ci:env:"}, "needs a variable name"),
    ],
)
def test_conflicting_or_malformed_auth_is_refused_without_echoing_it(
    superuser, auth_destination, fields, words
):
    response = superuser.post(
        f"{ADMIN}/destination/{auth_destination.pk}/change/", destination_form(**fields)
    )

    assert response.status_code == 200
    text = response.content.decode()
    assert words in text
    assert_no_secret(text)
    auth_destination.refresh_from_db()
    assert (auth_destination.bearer_token, auth_destination.basic_auth) == (BEARER, "")


def test_a_managed_entrys_auth_cannot_be_replaced_by_a_crafted_post(superuser):
    destination = Destination.objects.create(
        name="cfg", url="https://cfg.example.com/", bearer_token=BEARER, managed=True
    )
    superuser.post(
        f"{ADMIN}/destination/{destination.pk}/change/",
        destination_form(
            name="cfg",
            clear_bearer_token="on",
            new_basic_auth=f"ci:{NEW_BASIC_PASSWORD}",
            headers='{"X-Evil": "1"}',
        ),
    )
    destination.refresh_from_db()
    assert (destination.bearer_token, destination.basic_auth, destination.headers) == (
        BEARER,
        "",
        {},
    )


def test_a_destination_created_in_the_admin_gets_headers_auth_and_forwarding(superuser, db):
    response = superuser.post(
        f"{ADMIN}/destination/add/",
        destination_form(
            name="new",
            new_bearer_token="env:CI_TOKEN",
            headers='{"X-Team": "ops", "X-Api-Key": "env:API_KEY"}',
            forward_headers='["X-Gitlab-*"]',
        ),
    )

    assert response.status_code == 302
    created = Destination.objects.get(name="new")
    assert created.bearer_token == "env:CI_TOKEN"
    assert created.headers == {"X-Team": "ops", "X-Api-Key": "env:API_KEY"}
    assert created.forward_headers == ["X-Gitlab-*"]
    add_page = page(superuser, f"{ADMIN}/destination/add/")
    assert "Bearer token" in add_page
    assert 'name="clear_bearer_token"' not in add_page


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"headers": '{"Content-Type": "text/plain"}'}, "set by Hookway itself"),
        ({"headers": '{"X-Hookway-Source": "x"}'}, "set by Hookway itself"),
        ({"headers": '{"X-Api-Key": "literal-key-value"}'}, "looks like a credential"),
        ({"headers": '{"X-Team": "a\\r\\nX-Evil: 1"}'}, "line break"),
        ({"headers": '{"X Team": "ops"}'}, "not a valid header name"),
        ({"headers": '{"X-Team": "a", "x-team": "b"}'}, "given twice"),
        ({"headers": '["X-Team"]'}, "Expected a JSON object"),
        ({"headers": '{"X-Team": 1}'}, "Expected a JSON object"),
        ({"forward_headers": '["X-Gitlab-Token"]'}, "is never forwarded"),
        ({"forward_headers": '"X-Gitlab-*"'}, "Expected a JSON list"),
    ],
)
def test_bad_headers_or_patterns_are_refused(superuser, auth_destination, fields, words):
    response = superuser.post(
        f"{ADMIN}/destination/{auth_destination.pk}/change/", destination_form(**fields)
    )

    assert response.status_code == 200
    assert words in response.content.decode()
    auth_destination.refresh_from_db()
    assert auth_destination.headers == {}
    assert auth_destination.forward_headers == []


def test_the_history_never_records_auth_secrets(superuser, auth_destination):
    url = f"{ADMIN}/destination/{auth_destination.pk}/change/"
    superuser.post(url, destination_form(new_bearer_token=NEW_BEARER))
    superuser.post(
        url,
        destination_form(clear_bearer_token="on", new_basic_auth=f"ci:{NEW_BASIC_PASSWORD}"),
    )

    for entry in LogEntry.objects.all():
        assert_no_secret(f"{entry.change_message} {entry.object_repr} {entry}")
    assert_no_secret(page(superuser, f"{url[: -len('change/')]}history/"))
