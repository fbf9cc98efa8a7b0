"""The dispatcher's backoff after failed database calls and crashed tasks."""

from __future__ import annotations

import pytest

from hookway.dispatch.dispatcher import BACKOFF_FIRST, BACKOFF_MAX, _backoff


@pytest.mark.parametrize(("failures", "base"), [(1, BACKOFF_FIRST), (2, 2 * BACKOFF_FIRST)])
def test_backoff_doubles_from_the_first_delay_with_jitter(failures, base):
    assert all(base * 0.8 <= _backoff(failures) <= base * 1.2 for _ in range(200))


@pytest.mark.parametrize("failures", [20, 1025, 10_000])
def test_backoff_stays_at_its_cap_however_long_the_failures_last(failures):
    # 1025 failures in a row (a database down ~85 minutes) used to overflow a float.
    assert all(BACKOFF_MAX * 0.8 <= _backoff(failures) <= BACKOFF_MAX * 1.2 for _ in range(200))
