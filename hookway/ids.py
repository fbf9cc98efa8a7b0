"""Time-ordered, URL-safe identifiers: ``evt_…`` for events, ``msg_…`` for deliveries.

48 bits of milliseconds then 80 random bits, in Crockford base32 (the ULID layout), so ids
sort by creation time in the admin and in indexes, and never collide in practice.

Within a process ids are strictly increasing (ULID's monotonic form): a second id in the
same millisecond is the previous one plus 1, not new random bits that could sort before
it. Events are numbered under the write lock, so their ids follow commit order, which the
event stream's cursor (hookway.api.cursor) relies on: "every event after this id".
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# Every pair of digits (10 bits), and where each of an id's 13 pairs sits in its value.
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_PAIR_SHIFTS = tuple(range(120, -1, -10))


def _base32(value: int) -> str:
    """``value`` (< 2**130) as 26 Crockford base32 digits, most significant first.

    Two digits per step from a table: half the time of a loop over the 26 digits
    (base64.b32encode is such a loop in Python too), on the ingest writer's thread,
    which shares the GIL with the event loop."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


_lock = threading.Lock()
_last: dict[str, int] = {}


def new_id(prefix: str) -> str:
    """Return a new identifier such as ``evt_01jd…`` (prefix, underscore, 26 characters),
    greater than every id this process made before with the same prefix."""
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | secrets.randbits(80)
    with _lock:
        last = _last.get(prefix, 0)
        if value <= last:
            # The same millisecond (or the clock stepped back): count up from the last.
            value = last + 1
        _last[prefix] = value
    return f"{prefix}_{_base32(value)}"


def event_id() -> str:
    return new_id("evt")


def delivery_id() -> str:
    return new_id("msg")
