"""A route's rules without a database: CEL filters and transforms (hookway.routing.expr)
and the $-operator match (hookway.routing.match), checked when saved and evaluated on
events; fuzzed so no input makes them fail other than with a RuleError or a reason."""

from __future__ import annotations

import contextlib
import json
import math
import re
import string
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookway.config import file as config_file
from hookway.routing import expr, match, rules
from hookway.routing.errors import EvalError, RuleError

ORDER = {
    "data": {
        "amount": 150,
        "currency": "usd",
        "items": [{"sku": "a", "labels": ["urgent"]}, {"sku": "b", "labels": []}],
    },
    "type": "invoice.paid",
    "tags": ["vip", "eu"],
}


def event(payload: Any = ORDER, **headers: str) -> rules.EventVariables:
    return rules.EventVariables(
        json.dumps(payload).encode(),
        headers or {"X-Gitlab-Event": "Push Hook"},
        "invoice.paid",
        "stripe",
    )


def reason(filter: str = "", match_doc: Any = None, payload: Any = ORDER) -> str | None:
    return rules.decide(rules.check(filter, match_doc), event(payload))


# -- CEL filters ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payload.data.amount >= 100", None),
        ("payload.data.amount >= 100.5", None),  # int against double: CEL compares values
        ("payload.data.amount > 1000", "filter is false"),
        ("headers['x-gitlab-event'] == 'Push Hook'", None),  # header names in lower case
        ("event_name.startsWith('invoice.') && source == 'stripe'", None),
        ("payload.data.items.exists(i, 'urgent' in i.labels)", None),
        ("has(payload.data.refund)", "filter is false"),
        ("'vip' in payload.tags", None),
    ],
)
def test_a_filter_takes_or_refuses_an_event(text: str, expected: str | None) -> None:
    assert reason(text) == expected


def test_a_missing_key_is_a_no_with_the_reason() -> None:
    assert reason("payload.data.refund.amount > 1") == "filter error: no such key: 'refund'"


def test_a_filter_that_is_not_a_boolean_is_a_no_with_the_reason() -> None:
    assert reason("payload.data.amount") == "filter error: it gave 150, not true or false"


def test_a_body_that_is_not_json_is_said() -> None:
    broken = rules.EventVariables(b"<xml/>", {}, "push", "src")
    why = rules.decide(rules.check("payload.a == 1"), broken)
    assert why is not None
    assert why.startswith("filter error")
    assert "the body is not JSON" in why


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("payload.amount >", "filter: line 1, column 17: Syntax error"),
        ("payload.a &&\n  (payload.b", "filter: line 2, column 13:"),
        ("amount > 1", "filter: unknown variable 'amount'"),
        ("lowerAscii(payload.a) == 'x'", "filter: unknown function 'lowerAscii'"),
        (
            "payload.items.exists(i, i.tags.exists(t, t == 'x'))",
            "filter: 'exists' inside 'exists': a comprehension inside another",
        ),
        ("x" * 4001, "filter: longer than 4000 characters"),
        ("   ", "filter: empty expression"),
        ("payload.a == '\x00'", "filter: contains a NUL character"),
    ],
)
def test_a_bad_filter_is_refused_where_it_is_wrong(text: str, says: str) -> None:
    with pytest.raises(RuleError) as caught:
        rules.check(filter=text)
    assert str(caught.value).startswith(says), str(caught.value)


def test_comprehensions_one_after_another_are_allowed() -> None:
    rules.check("payload.a.map(x, x * 2).exists(y, y > 3) && payload.b.all(z, z != 0)")
    rules.check("payload.a.exists(x, x == '.map(')")  # a string is not a call


def test_an_expression_is_compiled_once_per_text() -> None:
    first = expr.check("payload.cached_once == 1")
    assert expr.check("payload.cached_once == 1") is first


def test_long_expressions_up_to_the_limit_compile_without_crashing() -> None:
    # Thousands of terms crashed the parser's stack; within the limit they don't.
    for text in ("+".join(["1"] * 2000)[:4000], "-" * 3999 + "1", "!" * 3996 + "true"):
        expr.evaluate(expr.check(text), {})
    for text in ("(" * 1999 + "1" + ")" * 1999, "[" * 2000 + "]" * 2000):
        with pytest.raises(RuleError):
            expr.check(text)


def test_deeply_nested_payloads_evaluate() -> None:
    deep: Any = 1
    for _ in range(900):  # json.loads stops near 1,000 levels
        deep = [deep]
    assert expr.evaluate(expr.check("size(payload) == 1"), {"payload": deep}) is True


# Only the fields an expression names are handed to CEL: the answer must be the same.
PRUNED = [
    "payload.data.amount > 100 && payload.data.currency == 'usd'",
    "has(payload.data.refund) || size(payload.data.items) == 2",
    "payload.data.items.exists(i, i.sku == 'b')",
    "payload.data.items[0].sku == 'a'",
    "payload['type'] == 'invoice.paid'",
    "payload.data == payload.data",
    "payload.type.size() > 3 && payload.tags.size() == 2",
    "payload.data.amount == 150 && size(payload.data) == 3",
]


@pytest.mark.parametrize("text", PRUNED)
def test_a_pruned_payload_gives_the_whole_payloads_answer(text: str) -> None:
    compiled = expr.check(text)
    whole = compiled.program.execute({"payload": ORDER})
    assert expr.evaluate(compiled, {"payload": ORDER}) == whole


def _json_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["data", "amount", "items", "sku", "a"])
    return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    _json_containers,
    max_leaves=20,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=json_values,
    text=st.sampled_from([*PRUNED, "has(payload.a.amount)", "payload.a.sku == 1"]),
)
def test_pruning_never_changes_an_answer(payload: Any, text: str) -> None:
    compiled = expr.check(text)
    try:
        whole: Any = ("value", compiled.program.execute({"payload": payload}))
    except Exception as exc:  # noqa: BLE001 - any failure of the library counts as one
        whole = ("error", type(exc).__name__)
    try:
        pruned: Any = ("value", expr.evaluate(compiled, {"payload": payload}))
    except EvalError:
        pruned = ("error", None)
    assert pruned[0] == whole[0]
    if pruned[0] == "value":
        assert pruned[1] == whole[1]


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=string.printable + "αβ\u2028", max_size=120))
def test_any_text_is_a_filter_or_a_rule_error(text: str) -> None:
    try:
        compiled = rules.check(filter=text)
    except RuleError as exc:
        problem = str(exc)
        assert problem.startswith("filter: ")
        return
    # What compiles evaluates to an answer or a reason, never an exception.
    rules.decide(compiled, event())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "payload",
                ".data",
                ".amount",
                ".items",
                "[0]",
                "['a']",
                " == ",
                " > ",
                " + ",
                "1",
                "1.5",
                "'x'",
                "null",
                "true",
                "(",
                ")",
                " && ",
                " || ",
                "!",
                "-",
                ".exists(i, ",
                ".map(x, ",
                "i",
                "x",
                ", ",
                "size(",
                "has(",
                "headers",
                "event_name",
                "source",
                " in ",
                "[",
                "]",
                "{",
                "}",
                ": ",
                "?",
                " : ",
            ]
        ),
        max_size=25,
    )
)
def test_cel_shaped_text_is_a_filter_or_a_rule_error(tokens: list[str]) -> None:
    text = "".join(tokens)
    try:
        compiled = rules.check(filter=text, transform=text)
    except RuleError:
        return
    rules.decide(compiled, event())
    if compiled.transform is not None:
        with contextlib.suppress(EvalError):
            rules.reshape(compiled.transform, event())


# -- transforms ---------------------------------------------------------------------------


def test_a_transform_makes_the_json_body() -> None:
    t = rules.check(
        transform="{'amount': payload.data.amount, 'who': source, 'skus': payload.data.items.map(i, i.sku)}"
    )
    body = rules.reshape(t.transform_or_raise(), event())
    assert json.loads(body) == {"amount": 150, "who": "stripe", "skus": ["a", "b"]}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{'when': timestamp('2024-01-01T00:00:00Z')}", "the result['when'] is a timestamp"),
        ("{1: 'one'}", "the result has the key 1: JSON object keys are strings"),
        ("[1.0 / 0.0]", "the result[0] is inf"),
        ("b'raw'", "the result is bytes"),
        ("payload.data.nope", "no such key: 'nope'"),
    ],
)
def test_a_transform_json_cant_hold_fails_with_the_reason(text: str, says: str) -> None:
    with pytest.raises(EvalError) as caught:
        rules.reshape(rules.check(transform=text).transform_or_raise(), event())
    assert str(caught.value).startswith(says), str(caught.value)


# -- $-operator match ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"payload.data.amount": {"$gte": 100}}, None),
        ({"payload.data.amount": {"$gte": 100.0, "$lt": 200}}, None),
        ({"payload.data.amount": {"$gt": 150}}, "match: payload.data.amount $gt 150: got 150"),
        ({"payload": {"data": {"currency": "usd"}}}, None),  # nested tables
        ({"payload.type": {"$in": ["invoice.paid", "invoice.voided"]}}, None),
        (
            {"payload.type": {"$nin": ["invoice.paid"]}},
            'match: payload.type $nin ["invoice.paid"]: got "invoice.paid"',
        ),
        ({"payload.tags": "vip"}, None),  # an array contains the value
        ({"payload.tags": {"$neq": "vip"}}, 'match: payload.tags $neq "vip": got ["vip", "eu"]'),
        ({"payload.data.items.$.sku": "b"}, None),  # any element
        ({"payload.data.items.$.labels": "urgent"}, None),
        ({"payload.data.refund": {"$exist": False}}, None),
        (
            {"payload.data.refund": {"$exists": True}},
            "match: payload.data.refund: missing ($exist true)",
        ),
        ({"payload.data.refund": {"$neq": 1}}, None),  # missing: a negative holds
        ({"payload.data.refund": 1}, "match: payload.data.refund $eq 1: missing"),
        ({"payload.data.amount": "150"}, 'match: payload.data.amount $eq "150": got 150'),
        ({"$or": [{"payload.type": "x"}, {"payload.data.currency": "usd"}]}, None),
        (
            {"$and": [{"payload.data.amount": {"$gte": 10}}, {"$or": [{"payload.type": "x"}]}]},
            'match: none of $or: payload.type $eq "x": got "invoice.paid"',
        ),
        ({"headers.X-Gitlab-Event": "Push Hook"}, None),  # header names ignore case
        ({"event_name": {"$in": ["invoice.paid"]}, "source": "stripe"}, None),
        ({"payload.data": {"$eq": ORDER["data"]}}, None),  # objects compare whole
        ({"payload.data.amount": {"$eq": True}}, "match: payload.data.amount $eq true: got 150"),
        ({"payload.type": {"$gte": "invoice."}}, None),  # strings compare as strings
        ({"payload.type": {"$gte": 1}}, 'match: payload.type $gte 1: got "invoice.paid"'),
    ],
)
def test_a_match_document_takes_or_refuses_an_event(
    doc: dict[str, Any], expected: str | None
) -> None:
    assert reason(match_doc=doc) == expected


def test_a_payload_that_is_an_array_is_matched_with_dollar() -> None:
    venues = [{"venues": [{"lagos": "ikeja"}, {"lagos": "lekki"}]}]
    assert reason(match_doc={"payload.$.venues.$.lagos": "lekki"}, payload=venues) is None
    assert reason(match_doc={"payload.$.venues.$.lagos": "yaba"}, payload=venues) is not None


def test_both_a_filter_and_a_match_must_hold() -> None:
    doc = {"payload.data.currency": "usd"}
    assert reason("payload.data.amount > 100", doc) is None
    assert reason("payload.data.amount > 1000", doc) == "filter is false"
    assert reason("payload.data.amount > 100", {"payload.data.currency": "eur"}) is not None


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"data.amount": 1}, "match[\"data.amount\"]: 'data' is not a variable"),
        ({"payload.amount": {"$gtee": 1}}, 'match["payload.amount"]["$gtee"]: unknown operator'),
        (
            {"payload.amount": {"$gte": "x", "$in": 3}},
            'match["payload.amount"]["$in"]: $in takes a list',
        ),
        (
            {"payload.amount": {"$gte": True}},
            'match["payload.amount"]["$gte"]: $gte takes a number or a string',
        ),
        (
            {"payload.amount": {"$exist": 1}},
            'match["payload.amount"]["$exist"]: $exist takes true or false',
        ),
        (
            {"payload..amount": 1},
            "match[\"payload..amount\"]: 'payload..amount' has an empty segment",
        ),
        ({"$or": []}, 'match["$or"]: expected a non-empty list of tables'),
        ({"$or": [1]}, 'match["$or"][0]: expected a table'),
        ({"$gte": 1}, "match: $gte needs a field"),
        (
            {"payload.a": {"$gte": 1, "b": 2}},
            "match[\"payload.a\"]: mixes operators ($gte) and field names ('b')",
        ),
        (
            {"payload.a": {"$gte": math.inf}},
            'match["payload.a"]["$gte"]: inf is not a finite number',
        ),
        ({"payload.a.$.b.$.c.$.d.$.e": 1}, "match[\"payload.a.$.b.$.c.$.d.$.e\"]: at most 3 '$'"),
        ({"event_name.x": 1}, 'match["event_name.x"]: event_name is a string'),
        ({"payload": {}}, 'match["payload"]: an empty table'),
        ([1], "match: expected a table"),
    ],
)
def test_a_bad_match_document_is_refused_naming_the_key(doc: Any, says: str) -> None:
    with pytest.raises(RuleError) as caught:
        rules.check(match_doc=doc)
    assert str(caught.value).startswith(says), str(caught.value)


match_keys = st.sampled_from(
    [
        "payload",
        "payload.a",
        "payload.$",
        "headers.x-a",
        "event_name",
        "source",
        "a",
        "",
        "$or",
        "$and",
        "$eq",
        "$neq",
        "$gt",
        "$gte",
        "$lt",
        "$lte",
        "$in",
        "$nin",
        "$exist",
        "$x",
        "payload..a",
        "payload.a.$.b",
    ]
)


def _match_containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=3) | st.dictionaries(match_keys, children, max_size=3)


match_docs = st.recursive(json_values, _match_containers, max_leaves=15)


@settings(max_examples=500, deadline=None)
@given(doc=match_docs, payload=json_values)
def test_any_match_document_is_a_rule_or_a_rule_error_and_never_fails_on_an_event(
    doc: Any, payload: Any
) -> None:
    try:
        compiled = rules.check(match_doc=doc)
    except RuleError as exc:
        problem = str(exc)
        assert problem.startswith("match")
        return
    answer = rules.decide(compiled, event(payload))
    assert answer is None or answer.startswith("match: ")


def test_json_equality_keeps_booleans_apart_from_numbers() -> None:
    assert match.equal(1, 1.0)
    assert not match.equal(True, 1)
    assert not match.equal([1, True], [1, 1])
    assert match.equal({"a": [1, {"b": None}]}, {"a": [1.0, {"b": None}]})


# -- the examples docs/delivery.md prints -------------------------------------------------

DELIVERY_DOCS = Path(__file__).resolve().parents[2] / "docs" / "delivery.md"


def _rules_section() -> str:
    text = DELIVERY_DOCS.read_text()
    start = text.index("## Filters and transformations")
    return text[start : text.index("\n## ", start + 1)]


def test_every_route_example_in_the_docs_is_a_valid_config() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", _rules_section(), re.S)
    assert len(blocks) >= 3
    for block in blocks:
        routes = tomllib.loads(block)["routes"]
        slugs = {r["source"] for r in routes}
        names = {r["destination"] for r in routes}
        stubs = "".join(f'[[sources]]\nslug = "{s}"\n' for s in slugs) + "".join(
            f'[[destinations]]\nname = "{n}"\nurl = "https://example.com/{n}"\n' for n in names
        )
        parsed = config_file.parse(stubs + block)
        assert all(r.filter or r.match or r.transform for r in parsed.routes)


def test_every_filter_example_in_the_docs_compiles() -> None:
    (block,) = re.findall(r"```text\n(.*?)```", _rules_section(), re.S)
    lines = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(lines) >= 8
    for line in lines:
        rules.check(filter=line)


def test_the_docs_transform_example_makes_the_printed_shape() -> None:
    t = rules.check(
        transform='{"text": payload.user.name + " opened " + payload.object_attributes.title, '
        '"url": payload.object_attributes.url}'
    )
    merge_request = {
        "user": {"name": "Ada"},
        "object_attributes": {"title": "Fix CI", "url": "https://gitlab.example/mr/1"},
    }
    body = rules.reshape(t.transform_or_raise(), event(merge_request))
    assert json.loads(body) == {"text": "Ada opened Fix CI", "url": "https://gitlab.example/mr/1"}
