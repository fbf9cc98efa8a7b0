"""A route's rules together: which events it takes (``filter`` and ``match``, both must
hold) and the body it sends (``transform``), checked when saved and applied to events.

Runtime behaviour (docs/delivery.md, "When a rule fails for one event"):

- a filter or match that can't be evaluated for an event (a missing key, a type
  mismatch, a body that is not JSON) does not take it: no delivery is created and the
  event records which route skipped it and why (``Event.filtered_out``), as it does for
  a plain "no";
- a transform that fails for an event, or whose value JSON can't hold, fails the
  delivery permanently (error kind ``transform``) with the reason on its attempt; the
  event keeps its original body, so fixing the transform and replaying sends it.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hookway.routing import expr, match
from hookway.routing.errors import EvalError, RuleError

logger = logging.getLogger("hookway.routing")

__all__ = ["EvalError", "EventVariables", "RouteRules", "RuleError"]


@dataclass(frozen=True)
class RouteRules:
    """A route's compiled rules; each None when the route has none."""

    filter: expr.Expression | None = None
    match: match.Node | None = None
    transform: expr.Expression | None = None

    def transform_or_raise(self) -> expr.Expression:
        """The transform; raises RuleError when there is none."""
        if self.transform is None:
            raise RuleError("transform: none")
        return self.transform

    @property
    def selects(self) -> bool:
        """True when the route takes only some events (a filter or a match)."""
        return self.filter is not None or self.match is not None


def check(filter: str = "", match_doc: Any = None, transform: str = "") -> RouteRules:
    """Compile a route's rules as saved (empty text or an empty/None document: none);
    raise RuleError naming the key (``filter: line 1, column 9: …``,
    ``match["payload.x"]["$gte"]: …``, ``transform: …``)."""
    compiled_filter = compiled_transform = None
    compiled_match = None
    if filter:
        try:
            compiled_filter = expr.check(filter)
        except RuleError as exc:
            raise RuleError(f"filter: {exc}") from None
    if match_doc:
        compiled_match = match.check(match_doc)
    elif match_doc is not None and not isinstance(match_doc, Mapping):
        match.check(match_doc)  # raises, saying a table was expected
    if transform:
        try:
            compiled_transform = expr.check(transform)
        except RuleError as exc:
            raise RuleError(f"transform: {exc}") from None
    return RouteRules(compiled_filter, compiled_match, compiled_transform)


def event_name_matches(patterns: list[str], event_name: str) -> bool:
    """True when a route with these glob patterns takes this event name (none: all)."""
    if not patterns:
        return True
    return any(fnmatch.fnmatchcase(event_name, str(p)) for p in patterns)


class EventVariables:
    """What rules see of an event: ``payload`` (its body parsed as JSON; null when it is
    not JSON), ``headers`` (its stored headers, names in lower case), ``event_name`` and
    ``source``. The body is parsed once, on first use, for all of an event's routes."""

    def __init__(
        self, body: bytes, headers: Mapping[str, Any] | None, event_name: str, source: str
    ) -> None:
        self._body = body
        self._raw_headers = headers or {}
        self.event_name = event_name
        self.source = source
        self._payload: Any = None
        self._parsed = False
        self.body_problem = ""

    @classmethod
    def sample(
        cls, payload: Any, headers: Mapping[str, Any], event_name: str, source: str
    ) -> EventVariables:
        """Variables for a sample payload given as data (the API's filter test)."""
        event = cls(b"", headers, event_name, source)
        event._payload, event._parsed = payload, True
        return event

    @property
    def payload(self) -> Any:
        if not self._parsed:
            self._parsed = True
            try:
                self._payload = json.loads(self._body)
            except (ValueError, RecursionError) as exc:
                self.body_problem = f"the body is not JSON ({exc})"
        return self._payload

    def as_dict(self) -> dict[str, Any]:
        return {
            "payload": self.payload,
            "headers": {str(k).lower(): str(v) for k, v in self._raw_headers.items()},
            "event_name": self.event_name,
            "source": self.source,
        }


def _describe(value: Any) -> str:
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def decide(rules: RouteRules, event: EventVariables) -> str | None:
    """None when the route takes the event; else why not, for the event's record
    (``match: payload.amount $gte 100: got 5``, ``filter is false``,
    ``filter error: no such key: 'amount'``). Never raises for the event's sake."""
    variables = event.as_dict()
    if rules.match is not None:
        why = match.explain(rules.match, variables)
        if why is not None:
            return f"match: {why}"
    if rules.filter is not None:
        try:
            result = expr.evaluate(rules.filter, variables)
        except EvalError as exc:
            note = f" ({event.body_problem})" if event.body_problem else ""
            return f"filter error: {exc}{note}"
        if result is False:
            return "filter is false"
        if result is not True:
            return f"filter error: it gave {_describe(result)}, not true or false"
    return None


def reshape(transform: expr.Expression, event: EventVariables) -> bytes:
    """The body a transform makes of the event, as compact JSON (UTF-8); raises
    EvalError when the transform fails for it or gives what JSON can't hold."""
    value = expr.evaluate(transform, event.as_dict())
    problem = _json_problem(value, "the result")
    if problem is not None:
        raise EvalError(problem)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _json_problem(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where} is {value}, which JSON can't hold"
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = _json_problem(item, f"{where}[{i}]")
            if problem is not None:
                return problem
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return (
                    f"{where} has the key {key!r}: JSON object keys are strings "
                    "(write it quoted, or convert it with string())"
                )
            problem = _json_problem(item, f"{where}[{key!r}]")
            if problem is not None:
                return problem
        return None
    kind = {bytes: "bytes", type(None): "null"}.get(type(value), type(value).__name__)
    if hasattr(value, "isoformat"):
        kind = "a timestamp"
    elif hasattr(value, "total_seconds"):
        kind = "a duration"
    return f"{where} is {kind}, which JSON can't hold (convert it with string())"


def trial(rules: RouteRules, event: EventVariables) -> dict[str, Any]:
    """Every rule's result on one event, for the API's and the admin's test: whether
    the route takes it and why not (as ``decide``), the filter's value or error, the
    match's first failing condition, and the transform's body or error."""
    variables = event.as_dict()
    answer: dict[str, Any] = {
        "matched": True,
        "reason": None,
        "filter": None,
        "match": None,
        "transform": None,
    }
    reason = decide(rules, event)
    if reason is not None:
        answer["matched"], answer["reason"] = False, reason
    if rules.match is not None:
        failed = match.explain(rules.match, variables)
        answer["match"] = {"result": failed is None, "failed": failed}
    if rules.filter is not None:
        try:
            value = expr.evaluate(rules.filter, variables)
        except EvalError as exc:
            answer["filter"] = {"result": None, "problem": str(exc)}
        else:
            ok = isinstance(value, bool)
            answer["filter"] = {
                "result": value if ok else None,
                "problem": None if ok else f"it gave {_describe(value)}, not true or false",
            }
    if rules.transform is not None:
        try:
            body = reshape(rules.transform, event)
        except EvalError as exc:
            answer["transform"] = {"body": None, "problem": str(exc)}
        else:
            answer["transform"] = {"body": json.loads(body), "problem": None}
    return answer


# A rule that fails for many events is said once a minute per route, not per event.
_LOG_EVERY = 60.0
_last_logged: dict[tuple[int, str], float] = {}


def log_skip(route_id: int, destination: str, reason: str) -> None:
    """Log, at most once a minute per route, that a rule failed for an event (a plain
    "no" is not logged: it is what a filter is for)."""
    if not reason.startswith("filter error"):
        return
    now = time.monotonic()
    key = (route_id, "filter")
    if now - _last_logged.get(key, -_LOG_EVERY) < _LOG_EVERY:
        return
    _last_logged[key] = now
    logger.warning(
        json.dumps(
            {
                "event": "route_filter_failed",
                "route_id": route_id,
                "destination": destination,
                "reason": reason[:300],
                "note": "events it fails for are not delivered to this destination",
            },
            ensure_ascii=True,
        )
    )
