"""Who may read /metrics (hookway.metrics.access) and the settings that say so."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from hypothesis import given
from hypothesis import strategies as st

from hookway import conf
from hookway.metrics import access

KEY = {"SECRET_KEY": "a-test-key-that-is-long-enough-to-look-like-a-real-one-0123456789"}
TOKEN = "0123456789abcdef-metrics"


@pytest.fixture
def configured(settings: Any) -> Any:
    def apply(**fields: Any) -> None:
        settings.HOOKWAY = dataclasses.replace(conf.get(), **fields)

    return apply


def test_by_default_only_this_machine_may_scrape():
    settings = conf.load(KEY)
    assert settings.metrics_allowlist == ["127.0.0.0/8", "::1"]
    assert settings.metrics_token == ""
    assert settings.dispatcher_metrics_address is None


@pytest.mark.parametrize(
    ("client", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4 loopback on a dual-stack socket
        ("10.0.0.1", False),
        ("2001:db8::1", False),
        ("", False),
        (None, False),
        ("/run/hookway.sock", False),  # a Unix socket: no address to judge
    ],
)
def test_loopback_is_let_in_and_nothing_else(configured, client, allowed):
    configured()
    assert (access.refusal(client, None) is None) is allowed


def test_the_token_lets_any_address_in_and_a_wrong_one_is_refused_everywhere(configured):
    configured(metrics_token=TOKEN)
    assert access.refusal("198.51.100.4", f"Bearer {TOKEN}") is None
    assert access.refusal("198.51.100.4", f"bearer {TOKEN}") is None
    assert access.refusal("198.51.100.4", None) == access.REFUSED
    assert access.refusal("198.51.100.4", f"Basic {TOKEN}") == access.WRONG_TOKEN
    assert access.refusal("127.0.0.1", "Bearer nope") == access.WRONG_TOKEN
    assert access.refusal("127.0.0.1", None) is None


def test_an_empty_allowlist_leaves_only_the_token(configured):
    configured(metrics_allowlist=[], metrics_token=TOKEN)
    assert access.refusal("127.0.0.1", None) == access.REFUSED
    assert access.refusal("127.0.0.1", f"Bearer {TOKEN}") is None


def test_a_star_lets_anyone_in(configured):
    configured(metrics_allowlist=["*"])
    assert access.refusal("203.0.113.50", None) is None


@given(client=st.one_of(st.none(), st.text(max_size=60)), auth=st.one_of(st.none(), st.text()))
def test_any_client_and_header_get_an_answer_not_an_error(client, auth):
    # No token set: only a loopback address gets in, whatever the header says.
    result = access.refusal(client, auth)
    assert result is None or result == access.REFUSED


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"HOOKWAY_METRICS_TOKEN": "short"}, "HOOKWAY_METRICS_TOKEN"),
        ({"HOOKWAY_METRICS_ALLOWLIST": "10.0.0.1/8"}, "HOOKWAY_METRICS_ALLOWLIST"),
        ({"HOOKWAY_METRICS_ALLOWLIST": "prometheus.internal"}, "HOOKWAY_METRICS_ALLOWLIST"),
        ({"HOOKWAY_DISPATCHER_METRICS_ADDRESS": "9464"}, "HOOKWAY_DISPATCHER_METRICS_ADDRESS"),
        (
            {"HOOKWAY_DISPATCHER_METRICS_ADDRESS": "0.0.0.0:99999"},
            "HOOKWAY_DISPATCHER_METRICS_ADDRESS",
        ),
    ],
)
def test_a_bad_metrics_setting_names_the_variable(env, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        conf.load({**KEY, **env})


def test_metrics_settings_are_parsed():
    settings = conf.load(
        {
            **KEY,
            "HOOKWAY_METRICS_TOKEN": TOKEN,
            "HOOKWAY_METRICS_ALLOWLIST": "10.1.0.0/16, 192.0.2.7",
            "HOOKWAY_DISPATCHER_METRICS_ADDRESS": "[::1]:9464",
        }
    )
    assert settings.metrics_token == TOKEN
    assert settings.metrics_allowlist == ["10.1.0.0/16", "192.0.2.7"]
    assert settings.dispatcher_metrics_address == ("::1", 9464)
    assert TOKEN not in repr(settings)


def test_a_host_project_sets_them_in_its_hookway_dict():
    settings = conf.load_app({"METRICS_TOKEN": TOKEN, "METRICS_ALLOWLIST": ["10.0.0.0/8"]}, env={})
    assert settings.metrics_token == TOKEN
    assert settings.metrics_allowlist == ["10.0.0.0/8"]
