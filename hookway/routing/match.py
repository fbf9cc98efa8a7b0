"""The ``$``-operator JSON filter (a route's ``match``), in the form Convoy and Outpost
use, so their users can bring their filters along.

A document maps paths to conditions. A path starts at one of the variables
(``payload``, ``headers``, ``event_name``, ``source``) and goes on by keys with dots
(``"payload.data.amount"``) or by nested tables (``{ payload = { data = { … } } }``);
a ``$`` segment stands for any element of an array (``"payload.items.$.sku"``, at most
three). A condition is a value (equal; or, for an array, containing it) or a table of
operators, all of which must hold: ``$eq $neq $gt $gte $lt $lte $in $nin $exist``.
``$or`` and ``$and`` take a list of documents, at any level. Every path must hold.

Missing fields: a positive condition (``$eq``, ``$gt``…, ``$in``, ``$exist = true``)
does not hold; a negative one (``$neq``, ``$nin``, ``$exist = false``) does (MongoDB's
rule). Numbers compare as numbers whatever their JSON form (``100 == 100.0``); a number
never equals a string or a boolean; ``$gt`` and friends compare numbers with numbers and
strings with strings (ISO timestamps sort as strings), anything else does not hold.

Evaluation visits each path's values once: its cost is in proportion to the payload and
the document, whatever they hold.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hookway.routing.errors import RuleError

ROOTS = ("payload", "headers", "event_name", "source")
COMPARISONS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$neq", *COMPARISONS, "$in", "$nin", "$exist", "$exists")
LOGICAL = ("$or", "$and")
MAX_ARRAY_SEGMENTS = 3  # Convoy's limit too
MAX_DEPTH = 32
MAX_DOCUMENT_BYTES = 16 * 1024
MAX_LIST = 1000

_MISSING = object()


@dataclass(frozen=True)
class Condition:
    """Operators that must all hold at ``path`` (its text, ``key``, names it in reasons)."""

    key: str
    path: tuple[str, ...]
    operators: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    key: str
    parts: tuple[Node, ...]


Node = Condition | AllOf | AnyOf


def _json_value(value: Any, where: str, depth: int = 0) -> None:
    """Refuse what JSON can't hold (TOML's dates, infinities) with the key's place."""
    if depth > MAX_DEPTH:
        raise RuleError(f"{where}: nested more than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RuleError(f"{where}: {value!r} is not a finite number")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _json_value(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise RuleError(f"{where}: key {k!r} is not a string")
            _json_value(item, f"{where}[{k!r}]", depth + 1)
        return
    raise RuleError(
        f"{where}: {value!r} is not a JSON value (a TOML date or time: quote it as a string)"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _operand(op: str, value: Any, where: str) -> Any:
    if op in COMPARISONS:
        if not (_is_number(value) or isinstance(value, str)):
            raise RuleError(f"{where}: {op} takes a number or a string, got {value!r}")
    elif op in ("$in", "$nin"):
        if not isinstance(value, list):
            raise RuleError(f"{where}: {op} takes a list of values, got {value!r}")
        if len(value) > MAX_LIST:
            raise RuleError(f"{where}: {op} takes at most {MAX_LIST} values")
    elif op in ("$exist", "$exists") and not isinstance(value, bool):
        raise RuleError(f"{where}: {op} takes true or false, got {value!r}")
    return value


def _segments(key: str, prefix: tuple[str, ...], where: str) -> tuple[str, ...]:
    if not key:
        raise RuleError(f"{where}: an empty key names no field")
    parts = key.split(".")
    if any(not part for part in parts):
        raise RuleError(f"{where}: {key!r} has an empty segment (two dots, or one at an end)")
    path = prefix + tuple(parts)
    if path[0] not in ROOTS:
        hint = " (a Convoy filter's keys are the body's: prefix them with 'payload.')"
        raise RuleError(
            f"{where}: {path[0]!r} is not a variable; a path starts with one of "
            f"{', '.join(ROOTS)}{hint if not prefix else ''}"
        )
    if path[0] in ("event_name", "source") and len(path) > 1:
        raise RuleError(f"{where}: {path[0]} is a string, it has no field {path[1]!r}")
    if path[0] == "headers" and len(path) > 1:
        # Header names are matched in lower case, as they are stored for filters.
        path = ("headers", path[1].lower(), *path[2:])
    if path.count("$") > MAX_ARRAY_SEGMENTS:
        raise RuleError(f"{where}: at most {MAX_ARRAY_SEGMENTS} '$' (array) segments in a path")
    return path


def _quote(key: str) -> str:
    return json.dumps(key, ensure_ascii=False)


def _document(doc: Any, prefix: tuple[str, ...], where: str, depth: int) -> list[Node]:
    if depth > MAX_DEPTH:
        raise RuleError(f"{where}: nested more than {MAX_DEPTH} levels")
    if not isinstance(doc, dict):
        raise RuleError(f"{where}: expected a table of paths and conditions, got {doc!r}")
    if not doc:
        raise RuleError(f"{where}: an empty table matches nothing in particular; remove it")
    ops = [k for k in doc if isinstance(k, str) and k.startswith("$") and k not in LOGICAL]
    fields = [k for k in doc if not (isinstance(k, str) and k.startswith("$"))]
    if ops and fields:
        raise RuleError(
            f"{where}: mixes operators ({ops[0]}) and field names ({fields[0]!r}); "
            "put the operators in the field's own table"
        )
    nodes: list[Node] = []
    if ops:
        if not prefix:
            raise RuleError(
                f'{where}: {ops[0]} needs a field, e.g. {{ "payload.amount" = {{ {ops[0]} = … }} }}'
            )
        operators = []
        for op in ops:
            at = f"{where}[{_quote(op)}]"
            if op not in OPERATORS:
                raise RuleError(
                    f"{at}: unknown operator {op!r} (operators: {', '.join(OPERATORS + LOGICAL)})"
                )
            _json_value(doc[op], at)
            operators.append(("$exist" if op == "$exists" else op, _operand(op, doc[op], at)))
        nodes.append(Condition(".".join(prefix), prefix, tuple(operators)))
    for key, value in doc.items():
        if not isinstance(key, str):
            raise RuleError(f"{where}: key {key!r} is not a string")
        at = f"{where}[{_quote(key)}]"
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise RuleError(f"{at}: expected a non-empty list of tables")
            if len(value) > MAX_LIST:
                raise RuleError(f"{at}: at most {MAX_LIST} alternatives")
            parts = tuple(
                _all(_document(item, prefix, f"{at}[{i}]", depth + 1))
                for i, item in enumerate(value)
            )
            nodes.append(AllOf(parts) if key == "$and" else AnyOf(key, parts))
        elif not key.startswith("$"):
            path = _segments(key, prefix, at)
            if isinstance(value, dict):
                nodes.extend(_document(value, path, at, depth + 1))
            else:
                _json_value(value, at)
                nodes.append(Condition(".".join(path), path, (("$eq", value),)))
    return nodes


def _all(nodes: list[Node]) -> Node:
    return nodes[0] if len(nodes) == 1 else AllOf(tuple(nodes))


def check(doc: Any) -> Node:
    """Compile a match document; return it, or raise RuleError naming the key at fault
    (``match["payload.amount"]["$gte"]: …``)."""
    if not isinstance(doc, Mapping):
        raise RuleError('match: expected a table, e.g. { "payload.amount" = { "$gte" = 100 } }')
    try:
        size = len(json.dumps(doc, default=str))
    except (ValueError, RecursionError):
        raise RuleError("match: not a JSON document") from None
    if size > MAX_DOCUMENT_BYTES:
        raise RuleError(f"match: larger than {MAX_DOCUMENT_BYTES} bytes as JSON")
    return _all(_document(dict(doc), (), "match", 0))


# -- evaluation -------------------------------------------------------------------------


def _values(value: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """Every value at ``path`` below ``value`` ('$' fans out over an array's elements)."""
    if not path:
        yield value
        return
    head, rest = path[0], path[1:]
    if head == "$":
        if isinstance(value, list):
            for item in value:
                yield from _values(item, rest)
        return
    if isinstance(value, dict):
        if head in value:
            yield from _values(value[head], rest)
    elif isinstance(value, list) and head.isdigit():
        index = int(head)
        if index < len(value):
            yield from _values(value[index], rest)


def equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value (1 == 1.0), booleans only with booleans."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def _compare(op: str, value: Any, operand: Any) -> bool:
    if _is_number(value) and _is_number(operand):
        pass
    elif not (isinstance(value, str) and isinstance(operand, str)):
        return False
    if op == "$gt":
        return bool(value > operand)
    if op == "$gte":
        return bool(value >= operand)
    if op == "$lt":
        return bool(value < operand)
    return bool(value <= operand)


def _holds_once(op: str, value: Any, operand: Any) -> bool:
    """A positive operator on one value; an array value holds if the array itself or
    one of its elements does."""

    def test(v: Any) -> bool:
        if op == "$eq":
            return equal(v, operand)
        if op == "$in":
            return any(equal(v, o) for o in operand)
        return _compare(op, v, operand)

    if test(value):
        return True
    return isinstance(value, list) and any(test(item) for item in value)


_NEGATION = {"$neq": "$eq", "$nin": "$in"}


def _condition(node: Condition, root: Mapping[str, Any]) -> str | None:
    found = list(_values(root, node.path))
    for op, operand in node.operators:
        if op == "$exist":
            if bool(found) != operand:
                return f"{node.key}: {'missing' if operand else 'present'} ($exist {str(operand).lower()})"
            continue
        positive = _NEGATION.get(op, op)
        holds = any(_holds_once(positive, value, operand) for value in found)
        if op in _NEGATION:
            holds = not holds
        if not holds:
            got = "missing" if not found else f"got {_short(found[0])}"
            return f"{node.key} {op} {_short(operand)}: {got}"
    return None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def explain(node: Node, root: Mapping[str, Any]) -> str | None:
    """None when ``root`` (the event's variables) matches; else the first condition that
    does not hold, in words (``payload.amount $gte 100: got 50``)."""
    if isinstance(node, Condition):
        return _condition(node, root)
    if isinstance(node, AllOf):
        for part in node.parts:
            why = explain(part, root)
            if why is not None:
                return why
        return None
    reasons = []
    for part in node.parts:
        why = explain(part, root)
        if why is None:
            return None
        reasons.append(why)
    return "none of $or: " + "; ".join(reasons[:3]) + ("; …" if len(reasons) > 3 else "")


def matches(node: Node, root: Mapping[str, Any]) -> bool:
    """True when ``root`` (the event's variables) matches the document."""
    return explain(node, root) is None
