"""Order keys: which lane of an ordered destination a delivery joins (docs/delivery.md,
"Ordered delivery").

A destination's ``order_key`` is a CEL expression over the same variables as a route's
filter (``payload``, ``headers``, ``event_name``, ``source``), checked when saved and
evaluated once per event and destination at fan-out (hookway.store.events). Its value
(a string, an int or a bool) becomes the delivery's key, stored with it: one delivery in
flight per (destination, key), in received order within a key, the keys in parallel.

An event it can't be evaluated for (a missing field, a null, a list) is never refused
for it: its delivery joins the empty key's lane (FALLBACK, shared with every other such
event), and the delivery records why (``Delivery.order_key_error``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Any, NamedTuple

from hookway.routing import expr
from hookway.routing.errors import EvalError, RuleError
from hookway.routing.rules import EventVariables

logger = logging.getLogger("hookway.routing")

# The key column's size. A longer value keeps its first characters and a hash of the
# whole (KEPT + "~" + 16 hex digits), so distinct long keys stay distinct lanes.
MAX_KEY = 200
_KEPT = MAX_KEY - 17
FALLBACK = ""


class Key(NamedTuple):
    """A delivery's lane key, and why it is the fallback ("" when it is not)."""

    value: str
    problem: str = ""


def check(text: str) -> expr.Expression:
    """Compile a destination's order_key; raise RuleError saying what is wrong and where
    (``line 1, column 5: …``), as a route filter's check does."""
    return expr.check(text)


def as_key(value: Any) -> str:
    """A CEL value as a lane key: a string as it is, an int in decimal, a bool as
    ``true``/``false``. Raises EvalError for any other kind. What the database could not
    hold (a NUL, a lone surrogate from a JSON escape) is escaped, and a value longer than
    MAX_KEY is shortened with a hash of the whole: equal values always give equal keys."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        raise EvalError(f"it gave {_kind(value)}, not a string, an int or a bool")
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    if len(safe) <= MAX_KEY:
        return safe
    digest = hashlib.sha256(safe.encode()).hexdigest()[:16]
    return f"{safe[:_KEPT]}~{digest}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float):
        return f"a double ({value!r}; convert it with int() or string())"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    if isinstance(value, bytes):
        return "bytes (convert it with string())"
    text = json.dumps(value, default=repr)
    return f"{type(value).__name__} {text[:40]}"


def evaluate(expression: expr.Expression, event: EventVariables) -> Key:
    """The key ``expression`` gives this event, or FALLBACK with why it has none. Never
    raises for the event's sake: ingest stores the event whatever its key does."""
    try:
        return Key(as_key(expr.evaluate(expression, event.as_dict())))
    except EvalError as exc:
        note = f" ({event.body_problem})" if event.body_problem else ""
        return Key(FALLBACK, f"order_key error: {exc}{note}; sent in the empty key's lane")
    except Exception as exc:  # a bug must not cost the event: it is still stored
        logger.exception("evaluating an order_key failed")
        return Key(
            FALLBACK,
            f"order_key error: internal error ({type(exc).__name__}); sent in the empty key's lane",
        )


# A key that fails for many events is said once a minute per destination, not per event.
_LOG_EVERY = 60.0
_last_logged: dict[int, float] = {}


def log_fallback(destination_id: int, destination: str, problem: str) -> None:
    """Log, at most once a minute per destination, that its order_key failed for an
    event (each delivery it failed for says so too)."""
    now = time.monotonic()
    if now - _last_logged.get(destination_id, -_LOG_EVERY) < _LOG_EVERY:
        return
    _last_logged[destination_id] = now
    logger.warning(
        json.dumps(
            {
                "event": "order_key_failed",
                "destination": destination,
                "reason": problem[:300],
                "note": "its deliveries go in the empty key's lane, in order with each other",
            },
            ensure_ascii=True,
        )
    )


__all__ = ["FALLBACK", "MAX_KEY", "Key", "RuleError", "as_key", "check", "evaluate"]
