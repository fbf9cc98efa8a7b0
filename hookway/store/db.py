"""The database as the store sees it: its clock, and what its errors mean."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias

from django.db import InterfaceError, connection
from django.db.models import Expression, Field, Model, PositiveIntegerField, QuerySet
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


class _Marker:
    """Where a Prepared query's parameter goes in its compiled parameters."""

    __slots__ = ("field", "index", "name")

    def __init__(self, name: str, index: int | None, field: Field[Any, Any]):
        self.name = name
        self.index = index  # the position in a list of values; None: a single value
        self.field = field


class Slot(Expression):
    """A parameter of a Prepared query: one placeholder, its value given at each run."""

    def __init__(self, marker: _Marker):
        super().__init__(output_field=marker.field)
        self.marker = marker

    # The stubs type parameters as str | int; a marker is replaced before the SQL runs.
    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, Any]:
        return "%s", (self.marker,)


class Slots:
    """What a Prepared query's builder gets: ``one`` and ``many`` give it the run's
    parameters, as Slots when the query is compiled, as the values themselves when it
    is built for the ORM to run (``Prepared.queryset``)."""

    # Django writes a slice's bounds into the SQL; compiled with this one, the LIMIT
    # becomes a parameter.
    LIMIT = 987_654_319

    def __init__(self, values: Mapping[str, Any] | None, sizes: Mapping[str, int]):
        self._values = values
        self._sizes = sizes

    def one(self, name: str, field: Field[Any, Any]) -> Any:
        if self._values is not None:
            return self._values[name]
        return Slot(_Marker(name, None, field))

    def many(self, name: str, field: Field[Any, Any]) -> list[Any]:
        """A non-empty list of values (for ``__in``)."""
        if self._values is not None:
            return list(self._values[name])
        return [Slot(_Marker(name, i, field)) for i in range(self._sizes[name])]


class _Compiled(NamedTuple):
    sql: str
    params: tuple[Any, ...]  # constants, and _Markers where the run's values go
    compiler: Any  # Django's SQLCompiler that wrote ``sql``: it converts the rows
    converters: dict[int, tuple[list[Any], Any]]


class Prepared:
    """A ``values_list`` query built by the ORM and compiled to SQL once per shape, then
    run as that SQL with each call's values, its rows converted as the ORM converts
    them. For queries run on the threads that share the GIL with an event loop (the
    dispatcher's claims): building and compiling a query with Django is about a
    millisecond of Python, most of a claim's time, and the same every time.

    ``build(slots, **flags)`` returns the queryset; ``slots.one(name, field)`` and
    ``slots.many(name, field)`` stand for the run's values, and a ``limit`` among them
    slices it. A shape is the flags and the size of each list, rounded up to a power of
    two up to MAX_PADDED (the rest filled with the list's last value, which changes no
    ``IN``); on SQLite and PostgreSQL alike. ``queryset()`` builds the same query with
    the values themselves, for the ORM to run (the tests compare the two)."""

    def __init__(self, build: Callable[..., QuerySet[Any, Any]]):
        self._build = build
        self._compiled: dict[tuple[Any, ...], _Compiled] = {}

    def queryset(self, flags: Mapping[str, Hashable] | None = None, **values: Any) -> Any:
        query = self._build(Slots(values, {}), **(flags or {}))
        if "limit" in values:
            query = query[: values["limit"]]
        return query

    def rows(
        self, flags: Mapping[str, Hashable] | None = None, **values: Any
    ) -> list[tuple[Any, ...]]:
        flags = flags or {}
        sizes = {
            name: _bucket(len(value))
            for name, value in values.items()
            if isinstance(value, list | tuple | set | frozenset)
        }
        values = {k: list(v) if k in sizes else v for k, v in values.items()}
        key = (
            connection.vendor,
            tuple(sorted(flags.items())),
            tuple(sorted(sizes.items())),
            "limit" in values,
        )
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = self._compile(flags, sizes, "limit" in values)
        params = [
            (
                value
                if not isinstance(value, _Marker)
                else _adapt(value.field, values[value.name], value.index)
            )
            for value in compiled.params
        ]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        return [tuple(row) for row in rows]

    def _compile(
        self, flags: Mapping[str, Hashable], sizes: Mapping[str, int], limited: bool
    ) -> _Compiled:
        query = self._build(Slots(None, sizes), **flags)
        if limited:
            query = query[: Slots.LIMIT]
        assert not query.query.annotation_select, "a values_list of plain fields only"
        assert not query.query.extra_select, "a values_list of plain fields only"
        compiler = query.query.get_compiler(using=query.db)
        sql, params = compiler.as_sql()
        params = tuple(params)
        if limited:
            bound = str(Slots.LIMIT)
            assert sql.count(bound) == 1, "the slice's bound is not in the SQL once"
            at = sql.index(bound)
            before = sql[:at].replace("%%", "").count("%s")
            sql = sql[:at] + "%s" + sql[at + len(bound) :]
            limit_field = PositiveIntegerField()
            params = (*params[:before], _Marker("limit", None, limit_field), *params[before:])
        fields = [selected[0] for selected in compiler.select[: compiler.col_count]]
        # The compiler and the backend's converters hold the compiling thread's
        # connection; converting reads only its settings (the time zone, its features),
        # the same for every thread's.
        return _Compiled(sql, params, compiler, compiler.get_converters(fields))


# Lists longer than this are not padded (a shape per size): padding one of 16,385 to
# 32,768 would pass SQLite's limit on bound parameters.
MAX_PADDED = 1024


def _bucket(size: int) -> int:
    assert size > 0, "an empty list has no IN to fill: leave its filter out"
    return 1 << (size - 1).bit_length() if size <= MAX_PADDED else size


def _adapt(field: Field[Any, Any], value: Any, index: int | None) -> Any:
    if index is not None:
        value = value[min(index, len(value) - 1)]
    return field.get_db_prep_value(value, connection, prepared=False)
