"""Delivery policies of a destination as plain data: its rate limit, its circuit breaker
and when it is disabled for failing (docs/delivery.md). Parsing and the few rules that
need no database, shared by the config file, the admin, the API and the store.
No Django, no I/O."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum


class CircuitState(StrEnum):
    """A destination's circuit: closed (sending), open (nothing sent; its deliveries
    wait for the cool-down), half-open (one waiting delivery sent as a probe)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Change(StrEnum):
    """What happened to a destination, one word each, as recorded (DestinationChange)
    and as the notification's type (``destination.<change>``)."""

    CIRCUIT_OPENED = "circuit_opened"  # closed -> open: too many failures in a row
    CIRCUIT_HALF_OPEN = "circuit_half_open"  # open -> half-open: a probe is sent
    CIRCUIT_REOPENED = "circuit_reopened"  # half-open -> open: the probe failed
    CIRCUIT_CLOSED = "circuit_closed"  # open or half-open -> closed: a delivery succeeded
    DISABLED = "disabled"
    ENABLED = "enabled"
    PAUSED = "paused"
    RESUMED = "resumed"


# The changes someone should hear about; the circuit's probing back and forth is recorded
# but not notified (a destination down for a day would otherwise notify every cool-down).
NOTIFIED = frozenset(
    {Change.CIRCUIT_OPENED, Change.CIRCUIT_CLOSED, Change.DISABLED, Change.ENABLED}
)

DEFAULT_CIRCUIT_FAILURES = 5
DEFAULT_CIRCUIT_COOLDOWN = 30.0
# Each failed probe doubles the cool-down, up to this: a destination down for days is
# still probed every hour, so it is noticed within the hour once it is back.
MAX_CIRCUIT_COOLDOWN = 3600.0
# Like Svix: a destination whose every attempt failed for five days is disabled.
DEFAULT_DISABLE_AFTER = 5 * 86400.0
MAX_DISABLE_AFTER = 365 * 86400.0
# A claim reserves rate-limit slots at most this far ahead: a dispatcher holds no more
# than half a second's worth of a destination's deliveries waiting for their turn (if
# its process stalls, no more than that can go late, at once), and a stopping one
# sends them within its grace period.
RATE_HORIZON = 0.5
MAX_RATE_PER_SECOND = 100_000

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE_RE = re.compile(r"^\s*(\d{1,9})\s*/\s*([a-z]+)\s*\Z")
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*\Z")
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
RATE_EXAMPLE = 'expected "<count>/s", "<count>/min" or "<count>/h", e.g. "50/s" or "3000/min"'


@dataclass(frozen=True)
class Rate:
    """``count`` deliveries per ``per`` seconds, spaced evenly (``interval`` apart)."""

    count: int
    per: float

    @property
    def interval(self) -> float:
        return self.per / self.count

    @property
    def per_second(self) -> float:
        return self.count / self.per


def parse_rate(text: str) -> Rate:
    """``"50/s"``, ``"3000/min"``, ``"100/h"`` (also ``sec``, ``second``, ``m``,
    ``minute``, ``hour``) as a Rate; raises ValueError saying what was expected."""
    match = _RATE_RE.match(text.lower()) if isinstance(text, str) else None
    if match is None or match.group(2) not in _UNITS:
        raise ValueError(f"{text!r} is not a rate: {RATE_EXAMPLE}")
    rate = Rate(int(match.group(1)), _UNITS[match.group(2)])
    if rate.count < 1:
        raise ValueError(f"{text!r}: the count must be at least 1 (remove rate_limit for none)")
    if rate.per_second > MAX_RATE_PER_SECOND:
        raise ValueError(f"{text!r}: at most {MAX_RATE_PER_SECOND:,} per second")
    return rate


def rate_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a rate limit ("" is none), or None."""
    if text == "":
        return None
    try:
        parse_rate(text)
    except ValueError as exc:
        return str(exc)
    return None


def rate_interval(text: str) -> float | None:
    """Seconds between two deliveries under the rate limit ``text``; None for none (or
    one that no longer parses: the store never stops sending over a bad stored value)."""
    if not text:
        return None
    try:
        return parse_rate(text).interval
    except ValueError:
        return None


def parse_duration(value: object) -> float:
    """Seconds from a number of seconds or a string such as ``"90s"``, ``"30m"``,
    ``"12h"``, ``"5d"``; raises ValueError saying what was expected."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION_RE.match(value.lower())):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(
            f'{value!r} is not a duration: expected seconds or a string like "90s", '
            '"30m", "12h" or "5d"'
        )
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{value!r}: expected a duration of 0 or more")
    if seconds > MAX_DISABLE_AFTER:
        raise ValueError(f"{value!r}: at most 365 days")
    return seconds


def format_duration(seconds: float) -> str:
    """``432000`` as ``"5d"``, ``90`` as ``"90s"``: the largest whole unit."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def next_cooldown(current: float, base: float) -> float:
    """The cool-down after a failed probe: double the current one (the base at first),
    at most MAX_CIRCUIT_COOLDOWN (or the base, if that is set higher)."""
    return min(max(MAX_CIRCUIT_COOLDOWN, base), max(base, current * 2))
