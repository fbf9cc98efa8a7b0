"""The database as the store sees it: its clock, and what its errors mean."""

from __future__ import annotations

from datetime import datetime
from typing import TypeAlias

from django.db import InterfaceError, connection
from django.utils import timezone

# A datetime as the backend takes it in raw SQL (connection.ops.adapt_datetimefield_value):
# text on SQLite, the datetime itself on PostgreSQL.
AdaptedDatetime: TypeAlias = str | datetime | None


def db_now() -> datetime:
    """The database's current time (PostgreSQL), or this host's for SQLite, whose
    database lives on this host by definition.

    Several hosts share one PostgreSQL queue and their clocks may disagree by seconds:
    leases and due times judged by each host's own clock would let a fast clock reclaim
    a lease its holder still uses, or hold back a delivery a slow clock thinks is early.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement_timestamp()")
            row = cursor.fetchone()
            assert row is not None
            value: datetime = row[0]
            return value
    return timezone.now()


# PostgreSQL error codes that mean the connection itself is gone (class 08, and the
# server shutting down or terminating the backend), not that a statement failed.
_DISCONNECTED = ("08", "57P01", "57P02", "57P03")


def disconnected(exc: Exception) -> bool:
    """True when ``exc`` says the connection was lost (a terminated backend, a
    restarted server), so the same work may be tried again on a new connection."""
    if connection.vendor != "postgresql":
        return False
    if isinstance(exc, InterfaceError):
        return True
    sqlstate = getattr(exc.__cause__, "sqlstate", None)
    if sqlstate is None:
        return True  # raised by the client library: the socket broke, no server answer
    return str(sqlstate).startswith(_DISCONNECTED)
