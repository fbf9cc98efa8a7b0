"""Hookway's ids: time-ordered, and strictly increasing within a process even when many
are made in one millisecond (the event stream's cursor reads "every event after this
id")."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hookway import ids


def test_ids_made_in_the_same_millisecond_still_increase(monkeypatch) -> None:
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_733_000_000_000_000_000)

    made = [ids.event_id() for _ in range(1000)]

    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_a_clock_stepping_back_does_not_make_a_smaller_id(monkeypatch) -> None:
    now = [1_733_000_000_000_000_000]
    monkeypatch.setattr(ids.time, "time_ns", lambda: now[0])
    before = ids.delivery_id()

    now[0] -= 5_000_000_000  # NTP steps the clock 5 s back
    after = ids.delivery_id()

    assert after > before


def test_ids_from_many_threads_are_unique_and_each_threads_increase() -> None:
    made: dict[int, list[str]] = {}

    def make(n: int) -> None:
        made[n] = [ids.event_id() for _ in range(2000)]

    threads = [threading.Thread(target=make, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [i for run in made.values() for i in run]
    assert len(set(everything)) == len(everything)
    for run in made.values():
        assert run == sorted(run)


@pytest.mark.parametrize("make", [ids.event_id, ids.delivery_id])
def test_an_id_is_its_prefix_and_26_base32_characters(make) -> None:
    prefix, _, rest = make().partition("_")
    assert prefix in {"evt", "msg"}
    assert len(rest) == 26
    assert set(rest) <= set("0123456789abcdefghjkmnpqrstvwxyz")


def _digits(value: int) -> str:
    """The ULID spelling, digit by digit: 26 base-32 digits, most significant first."""
    out = []
    for _ in range(26):
        out.append("0123456789abcdefghjkmnpqrstvwxyz"[value & 31])
        value >>= 5
    return "".join(reversed(out))


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_the_encoding_is_the_ulid_layout_for_every_128_bit_value(value: int) -> None:
    assert ids._base32(value) == _digits(value)


def test_the_encoding_at_its_edges() -> None:
    assert ids._base32(0) == "0" * 26
    assert ids._base32(31) == "0" * 25 + "z"
    assert ids._base32(2**128 - 1) == "7" + "z" * 25
