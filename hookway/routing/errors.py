"""The two ways a route's rule fails: refused when it is saved, or without a value for
one event."""

from __future__ import annotations


class RuleError(ValueError):
    """A filter, match or transform that can't be saved; the message says what and where
    (a line and column, or the match document's key)."""


class EvalError(Exception):
    """A valid rule that has no value for this event (a missing key, a type mismatch,
    a body that is not JSON); the message says why, for the operator."""
