"""The database as the store sees it: its clock, and what its errors mean."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeAlias

from django.db import InterfaceError, connection
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin
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


class Insert:
    """A prepared multi-row INSERT for one table, built from the model's own table and
    column names. Used instead of ``bulk_create`` where rows are written on a hot path
    (ingest's writer, a claim's attempts): those threads hold the GIL while they prepare
    rows, and the ORM's per-field preparation cost about four times as much Python per
    event (59 us measured), time the event loop could not run. ``complete``: the columns
    must be every column but an automatic primary key (no field is left to a default
    that only the ORM would fill in).

    One statement for many rows rather than ``executemany``: SQLite's driver lets go of
    the GIL around every statement it steps, once per row under ``executemany``, and
    each time the writer then waits for the event loop to hand it back (up to Python's
    5 ms switch interval when the loop is busy). A group's commit took that many waits."""

    # Rows per statement: within SQLite's and PostgreSQL's limits on bound parameters
    # (32,766 and 65,535) for tables of a few dozen columns.
    MAX_ROWS = 256

    def __init__(
        self,
        model: type[Model],
        columns: tuple[str, ...],
        json_columns: tuple[str, ...] = (),
        *,
        complete: bool = False,
    ):
        self.model = model
        self.columns = columns
        self.json_columns = json_columns
        self.complete = complete
        self._sql: dict[tuple[str, int], str] = {}

    def sql(self, rows: int = 1) -> str:
        """The INSERT of ``rows`` rows for the connection's database."""
        vendor = connection.vendor
        key = (vendor, rows)
        if key not in self._sql:
            qn = connection.ops.quote_name
            fields = {f.column for f in self.model._meta.concrete_fields}
            assert set(self.columns) <= fields, "column list out of date with the model"
            if self.complete:
                pk = self.model._meta.pk
                auto: set[str] = {pk.column} if isinstance(pk, AutoFieldMixin) else set()
                assert set(self.columns) == fields - auto, "a column is missing"
            marks = [
                "%s::jsonb" if c in self.json_columns and vendor == "postgresql" else "%s"
                for c in self.columns
            ]
            row = f"({', '.join(marks)})"
            self._sql[key] = (
                f"INSERT INTO {qn(self.model._meta.db_table)} "  # noqa: S608 - names from the model
                f"({', '.join(qn(c) for c in self.columns)}) VALUES {', '.join([row] * rows)}"
            )
        return self._sql[key]

    def insert(self, cursor: Any, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (tuples in ``columns`` order) with as few statements as fit."""
        for start in range(0, len(rows), self.MAX_ROWS):
            chunk = rows[start : start + self.MAX_ROWS]
            cursor.execute(self.sql(len(chunk)), [value for row in chunk for value in row])
