"""hookway.dispatch.retry (when the next attempt happens) and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from hookway.conf import DEFAULT_RETRY_SCHEDULE
from hookway.dispatch.retry import MAX_RETRY_AFTER, delay_after, is_last
from hookway.send.sender import parse_retry_after

HOUR = 3600
# The Standard Webhooks schedule as the design states it: the delay after failed attempt n.
DOCUMENTED_DELAYS = {
    1: 5,
    2: 5 * 60,
    3: 30 * 60,
    4: 2 * HOUR,
    5: 5 * HOUR,
    6: 10 * HOUR,
    7: 14 * HOUR,
    8: 20 * HOUR,
    9: 24 * HOUR,
    10: 24 * HOUR,  # past the end of the schedule: its last entry again
    25: 24 * HOUR,
}


@pytest.mark.parametrize(("attempt", "base"), DOCUMENTED_DELAYS.items())
def test_delay_follows_the_default_schedule_within_twenty_percent(attempt, base):
    rng = random.Random(attempt)
    delays = [delay_after(attempt, DEFAULT_RETRY_SCHEDULE, rng=rng) for _ in range(2000)]
    assert all(base * 0.8 <= d <= base * 1.2 for d in delays)
    # Jitter really spreads retries out: both sides of the nominal delay, many values.
    assert min(delays) < base * 0.9
    assert max(delays) > base * 1.1
    assert len(set(delays)) > 1000


def test_delay_without_an_rng_is_still_within_bounds():
    delays = {delay_after(2, DEFAULT_RETRY_SCHEDULE) for _ in range(200)}
    assert all(240 <= d <= 360 for d in delays)
    assert len(delays) > 1


def test_the_same_seed_gives_the_same_delay():
    first = delay_after(3, DEFAULT_RETRY_SCHEDULE, rng=random.Random(42))
    again = delay_after(3, DEFAULT_RETRY_SCHEDULE, rng=random.Random(42))
    other = delay_after(3, DEFAULT_RETRY_SCHEDULE, rng=random.Random(43))
    assert first == again
    assert first != other


def test_a_zero_delay_stays_zero():
    rng = random.Random(1)
    assert delay_after(0, DEFAULT_RETRY_SCHEDULE, rng=rng) == 0
    assert all(delay_after(n, (0, 0, 0), rng=rng) == 0 for n in range(1, 6))
    assert delay_after(1, (), rng=rng) == 0


def test_a_compressed_schedule_from_settings_is_followed():
    rng = random.Random(7)
    delays = [delay_after(1, (0, 0.5, 1), rng=rng) for _ in range(500)]
    assert all(0.4 <= d <= 0.6 for d in delays)
    delays = [delay_after(4, (0, 0.5, 1), rng=rng) for _ in range(500)]
    assert all(0.8 <= d <= 1.2 for d in delays)


def test_retry_after_longer_than_the_schedule_raises_the_delay():
    rng = random.Random(3)
    assert delay_after(1, DEFAULT_RETRY_SCHEDULE, retry_after=600, rng=rng) == 600


def test_retry_after_shorter_than_the_schedule_never_lowers_the_delay():
    for seed in range(200):
        delay = delay_after(3, DEFAULT_RETRY_SCHEDULE, retry_after=1, rng=random.Random(seed))
        plain = delay_after(3, DEFAULT_RETRY_SCHEDULE, rng=random.Random(seed))
        assert delay == plain
        assert delay >= 1800 * 0.8


def test_retry_after_is_capped():
    delay = delay_after(1, DEFAULT_RETRY_SCHEDULE, retry_after=30 * 24 * HOUR, rng=random.Random())
    assert delay == MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("attempt", "max_attempts", "last"),
    [(1, 1, True), (1, 10, False), (9, 10, False), (10, 10, True), (11, 10, True)],
)
def test_is_last_once_max_attempts_is_reached(attempt, max_attempts, last):
    assert is_last(attempt, max_attempts) is last


# -- Retry-After ------------------------------------------------------------------------

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (" 120 ", 120.0), ("0", 0.0)])
def test_retry_after_seconds_are_parsed(value, seconds):
    assert parse_retry_after(value, now=NOW) == seconds


def test_retry_after_http_date_in_the_future_is_seconds_until_then():
    when = datetime.fromtimestamp(NOW + 90, UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == 90.0


def test_retry_after_http_date_in_the_past_means_now():
    when = datetime.fromtimestamp(NOW - 3600, UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == 0.0


def test_retry_after_http_date_is_measured_from_the_clock_by_default():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Wed, 99 Foo 2015"])
def test_unreadable_retry_after_is_none(value):
    assert parse_retry_after(value, now=NOW) is None
