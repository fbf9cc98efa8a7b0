"""Why the store did not store a webhook. Each is returned (for one webhook of a group
commit) or raised (for a single call) by the store, and mapped to an HTTP status by the
ingest view, in one place (hookway.ingest.views)."""

from __future__ import annotations


class NotStored(Exception):
    """Nothing of this webhook was stored."""


class StoreUnavailable(NotStored):
    """The database could not commit it (down, locked, failing): retry later (503)."""


class StoreTimeout(StoreUnavailable):
    """Its deadline passed before it could be committed: retry later (503)."""


class SourceGone(NotStored):
    """Its source was deleted after ingest looked it up (404)."""


class Unstorable(NotStored):
    """The database refused this webhook's own data (400)."""
