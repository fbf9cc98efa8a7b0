"""Delivery policies as plain data (hookway.policy) and as hookway.toml writes them: the
rate limit, the circuit breaker, disable_after and [notifications], each refused with a
message naming the key, and the docs' examples taken as printed."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookway.config.file import ConfigError, parse
from hookway.policy import (
    DEFAULT_DISABLE_AFTER,
    MAX_CIRCUIT_COOLDOWN,
    Rate,
    format_duration,
    next_cooldown,
    parse_duration,
    parse_rate,
    rate_problem,
)
from tests.conftest import ROOT


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("50/s", Rate(50, 1.0)),
        ("3000/min", Rate(3000, 60.0)),
        ("100/h", Rate(100, 3600.0)),
        (" 7 / second ", Rate(7, 1.0)),
        ("1/MINUTE", Rate(1, 60.0)),
    ],
)
def test_a_rate_limit_reads_count_per_unit(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


def test_a_rate_s_interval_spaces_its_deliveries_evenly() -> None:
    assert parse_rate("50/s").interval == 0.02
    assert parse_rate("3000/min").interval == 0.02
    assert parse_rate("100/h").interval == 36.0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("50/d", "is not a rate"),
        ("50", "is not a rate"),
        ("/s", "is not a rate"),
        ("-5/s", "is not a rate"),
        ("1.5/s", "is not a rate"),
        ("0/s", "the count must be at least 1"),
        ("100001/s", "at most 100,000 per second"),
    ],
)
def test_a_bad_rate_limit_says_what_was_expected(text: str, says: str) -> None:
    assert says in (rate_problem(text) or "")


@given(st.text(max_size=30))
def test_any_text_is_a_rate_or_a_reason(text: str) -> None:
    problem = rate_problem(text)
    if problem is None:
        assert text == "" or parse_rate(text).count >= 1
    else:
        with pytest.raises(ValueError, match=re.escape(problem)):
            parse_rate(text)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (0, 0.0),
        (90, 90.0),
        (1.5, 1.5),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("12h", 43200.0),
        ("5d", 432000.0),
    ],
)
def test_a_duration_is_seconds_or_a_number_with_a_unit(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5 weeks", "", "d", -1, True, float("nan"), "400d"])
def test_a_bad_duration_is_refused(value: object) -> None:
    with pytest.raises(ValueError, match=r"duration|at most 365 days"):
        parse_duration(value)


def test_durations_are_shown_in_their_largest_whole_unit() -> None:
    assert [format_duration(s) for s in (DEFAULT_DISABLE_AFTER, 7200, 90, 1.5, 60)] == [
        "5d",
        "2h",
        "90s",
        "1.5s",
        "1m",
    ]


def test_the_cool_down_doubles_from_its_base_up_to_an_hour() -> None:
    cooldowns = [30.0]
    for _ in range(10):
        cooldowns.append(next_cooldown(cooldowns[-1], 30.0))
    assert cooldowns[:4] == [30, 60, 120, 240]
    assert max(cooldowns) == MAX_CIRCUIT_COOLDOWN
    # A base above the cap is kept.
    assert next_cooldown(7200, 7200) == 7200


def destination(extra: str) -> str:
    return f"""
[[destinations]]
name = "ci"
url = "https://ci.example.com/"
{extra}
"""


def test_the_policies_are_read_with_their_defaults() -> None:
    plain = parse(destination("")).destinations[0]
    assert (plain.rate_limit, plain.circuit_failures, plain.circuit_cooldown_seconds) == (
        "",
        5,
        30.0,
    )
    assert plain.disable_after_seconds == 5 * 86400
    set_ = parse(
        destination(
            'rate_limit = "3000/min"\ncircuit_failures = 0\ncircuit_cooldown_seconds = 2.5\n'
            "disable_after = 3600"
        )
    ).destinations[0]
    assert (set_.rate_limit, set_.circuit_failures) == ("3000/min", 0)
    assert (set_.circuit_cooldown_seconds, set_.disable_after_seconds) == (2.5, 3600.0)


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        (
            'rate_limit = "50/d"',
            "hookway.toml: destinations[0].rate_limit: '50/d' is not a rate: expected "
            '"<count>/s", "<count>/min" or "<count>/h", e.g. "50/s" or "3000/min"',
        ),
        ('rate_limit = ""', "destinations[0].rate_limit: must not be empty"),
        ("rate_limit = 50", "destinations[0].rate_limit: expected a string, got 50"),
        ("circuit_failures = -1", "destinations[0].circuit_failures: expected a whole number"),
        ("circuit_failures = 2.5", "destinations[0].circuit_failures: expected a whole number"),
        ("circuit_cooldown_seconds = 0", "destinations[0].circuit_cooldown_seconds: expected 0.1"),
        (
            'disable_after = "5 days"',
            "destinations[0].disable_after: '5 days' is not a duration: expected seconds or a "
            'string like "90s", "30m", "12h" or "5d" (0: never)',
        ),
        ("disable_after = true", "destinations[0].disable_after: True is not a duration"),
    ],
)
def test_a_bad_policy_is_refused_naming_its_key(extra: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse(destination(extra))
    assert says in str(error.value)


def test_notifications_name_a_destination_of_the_file() -> None:
    text = '[notifications]\ndestination = "ops"\n' + destination("")
    with pytest.raises(
        ConfigError, match=re.escape("notifications.destination: no destination 'ops'")
    ):
        parse(text)
    with pytest.raises(ConfigError, match="notifications: unknown key 'email'"):
        parse('[notifications]\nemail = "x@example.com"\n' + destination(""))
    with pytest.raises(ConfigError, match=re.escape("notifications.destination: required")):
        parse("[notifications]\n" + destination(""))
    ok = parse('[notifications]\ndestination = "ci"\n' + destination(""))
    assert ok.notification_destination == "ci"


def toml_blocks(page: str) -> list[str]:
    text = (ROOT / "docs" / page).read_text()
    return re.findall(r"^```toml\n(.*?)^```", text, re.S | re.M)


def test_the_delivery_docs_examples_parse_as_printed() -> None:
    blocks = toml_blocks("delivery.md")
    destinations = [b for b in blocks if "[[destinations]]" in b and "[notifications]" not in b]
    for block in destinations:
        # Each names its own destination; env: values the docs leave to the reader.
        parse(block, env={"CI_GITLAB_TOKEN": "x", "CI_TOKEN": "y", "CI_PASSWORD": "z"})
    (notifications,) = [b for b in blocks if "[notifications]" in b]
    assert parse(notifications).notification_destination == "ops-alerts"
    (limited,) = [b for b in blocks if "rate_limit" in b]
    assert parse(limited).destinations[0].rate_limit == "50/s"


def test_the_configuration_docs_notifications_example_parses() -> None:
    (block,) = [b for b in toml_blocks("configuration.md") if "[notifications]" in b]
    assert parse(block).notification_destination == "ops-alerts"
