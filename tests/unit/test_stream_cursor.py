"""The stream's resume cursor: attempts that finish out of order are neither skipped
nor sent twice, and an id round-trips through Last-Event-ID."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookway.api.cursor import BadCursor, Cursor, advance
from hookway.store.changes import AttemptRow, Changes, NewEvent

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def attempt(pk: int, outcome: str) -> AttemptRow:
    return AttemptRow(pk, 1, outcome, 200, "", f"msg_{pk}", "ci", "evt_x", "gl", "push", NOW, None)


def test_an_attempt_finishing_after_a_later_one_is_sent_once_when_it_finishes() -> None:
    start = Cursor("", 0)

    first, cursor = advance(start, Changes([], [attempt(1, "in_flight"), attempt(2, "success")]))
    second, cursor = advance(cursor, Changes([], [attempt(1, "retry")]))
    again, _ = advance(cursor, Changes([], [attempt(1, "retry"), attempt(2, "success")]))

    assert [m.attempt_pk for m in first] == [2]
    assert first[0].cursor == Cursor("", 2, frozenset({1}))
    assert [m.attempt_pk for m in second] == [1]
    assert cursor == Cursor("", 2)
    assert again == []


def event(pk: str, source: str) -> NewEvent:
    return NewEvent(pk, source, "push", NOW, None, 1, 0, 0, 0)


def test_changes_nobody_wants_move_the_cursor_and_make_no_message() -> None:
    changes = Changes(
        [event("evt_1", "busy"), event("evt_2", "quiet")],
        [attempt(1, "success"), attempt(2, "in_flight")],
    )

    messages, cursor = advance(Cursor("", 0), changes, lambda source: source == "quiet")

    assert [(m.kind, m.event_id) for m in messages] == [("event", "evt_2")]
    assert cursor == Cursor("evt_2", 2, frozenset({2}))


def test_merge_keeps_only_what_neither_side_has_given() -> None:
    a = Cursor("evt_a", 5, frozenset({3, 4}))
    b = Cursor("evt_b", 7, frozenset({4, 6}))

    merged = a.merge(b)

    assert merged == Cursor("evt_b", 7, frozenset({4, 6}))
    assert Cursor("", 7, frozenset({3, 6})).merge(a) == Cursor("evt_a", 7, frozenset({3, 6}))


@pytest.mark.parametrize(
    "cursor",
    [Cursor(), Cursor("evt_01jd0000000000000000000000", 255, frozenset({1, 17}))],
)
def test_a_cursor_round_trips(cursor: Cursor) -> None:
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["", "x", "evt_bad.1", ".zz", ".5.9", ".5.0", "a.b.c.d"])
def test_a_foreign_id_is_refused(text: str) -> None:
    with pytest.raises(BadCursor):
        Cursor.decode(text)
