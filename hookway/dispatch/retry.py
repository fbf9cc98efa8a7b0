"""The retry policy: when the next attempt happens, or that there is none.

Pure functions of the attempt number, the schedule and the receiver's Retry-After, so
they are tested without clocks or databases.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

JITTER = 0.2
# A receiver may ask for a pause (Retry-After); Hookway honours it up to this long.
MAX_RETRY_AFTER = 7 * 24 * 3600


def delay_after(
    attempt: int,
    schedule: Sequence[float],
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one.

    The schedule lists the delay before each attempt (entry 0 is before the first);
    attempts past its end reuse its last entry. The delay gets ±20 % jitter so retries
    of many deliveries spread out, and is never shorter than the receiver's Retry-After.
    """
    rng = rng or random.SystemRandom()
    base = schedule[min(attempt, len(schedule) - 1)] if schedule else 0.0
    delay = base * (1 + rng.uniform(-JITTER, JITTER))
    if retry_after is not None:
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return max(0.0, delay)


def is_last(attempt: int, max_attempts: int) -> bool:
    """True when ``attempt`` (1-based) was the last one ``max_attempts`` allows."""
    return attempt >= max_attempts
