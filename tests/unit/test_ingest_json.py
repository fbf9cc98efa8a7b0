"""Ingest's JSON parser (one shared decoder) answers every body as ``json.loads`` with
the same strictness hooks would: the same document, or the same MalformedBody."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hookway.ingest.errors import MalformedBody
from hookway.ingest.views import _finite_float, _not_json_constant, _parse_json


def _reference(body: bytes) -> Any:
    """What ingest answered when it called json.loads itself, per body."""
    text = body.decode("utf-8")
    try:
        return json.loads(text, parse_constant=_not_json_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise MalformedBody("the JSON document is nested too deeply") from None
    except ValueError as exc:
        raise MalformedBody(f"invalid JSON: {exc}") from None


def _outcome(parse: Any, body: bytes) -> tuple[str, Any]:
    try:
        return "ok", parse(body)
    except MalformedBody as exc:
        return "refused", str(exc)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(json_values.map(lambda v: json.dumps(v).encode()) | st.text().map(str.encode))
@example(b"\xef\xbb\xbf{}")  # a UTF-8 byte order mark
@example(b'{"a": NaN}')
@example(b"[1e999]")
@example(b'{"a": 1} x')
@example(b"1" * 5000)
def test_parsing_matches_json_loads_with_the_same_hooks(body: bytes) -> None:
    if not body.strip():
        return  # refused before parsing (empty body), by both
    assert _outcome(_parse_json, body) == _outcome(_reference, body)


def test_a_byte_order_mark_is_refused_as_json_loads_refuses_it() -> None:
    with pytest.raises(MalformedBody, match="Unexpected UTF-8 BOM"):
        _parse_json("\ufeff{}".encode())
