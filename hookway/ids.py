"""Time-ordered, URL-safe identifiers: ``evt_…`` for events, ``msg_…`` for deliveries.

48 bits of milliseconds then 80 random bits, in Crockford base32 (the ULID layout), so ids
sort by creation time in the admin and in indexes, and never collide in practice.
"""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def _base32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """Return a new identifier such as ``evt_01jd…`` (prefix, underscore, 26 characters)."""
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | secrets.randbits(80)
    return f"{prefix}_{_base32(value, 26)}"


def event_id() -> str:
    return new_id("evt")


def delivery_id() -> str:
    return new_id("msg")
