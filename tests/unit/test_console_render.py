"""The console's server-side rendering: highlighted payloads are escaped (a payload is
the sender's, never markup), odd JSON still renders; charts scale to a round top and
describe themselves for screen readers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from hookway.console import charts
from hookway.console.highlight import render_body


@given(st.binary(max_size=300))
def test_any_body_renders_without_raw_markup(body: bytes) -> None:
    shown = render_body(body)

    text = str(shown.html)
    assert shown.kind in ("json", "text")
    for tag in ("<script", "<img", "<a "):
        assert tag not in text
    assert shown.size == len(body)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=10,
    )
)
def test_any_json_value_is_highlighted_as_json(value: object) -> None:
    import json

    shown = render_body(json.dumps(value).encode())

    assert shown.kind == "json"
    str(shown.html).encode("utf-8")  # a page can hold it


def test_a_lone_surrogate_is_shown_as_its_escape() -> None:
    shown = render_body(b'{"a": "\\udfff"}')

    assert "\\udfff" in str(shown.html)


def test_a_chart_scales_to_a_round_top_and_says_what_it_shows() -> None:
    start = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    minutes = [start + timedelta(minutes=i) for i in range(60)]
    values = [0] * 59 + [37]

    svg = str(charts.bars("Events per minute", minutes, [charts.Series("events", "bar", values)]))

    assert 'aria-label="Events per minute"' in svg
    assert ">50</text>" in svg  # 37 rounds up to a scale of 50
    assert svg.count("<rect") == 1  # empty minutes draw nothing
    assert "12:59 UTC: 37 events" in svg
    assert [charts._top(n) for n in (0, 1, 3, 7, 20, 21, 999)] == [1, 1, 5, 10, 20, 50, 1000]
