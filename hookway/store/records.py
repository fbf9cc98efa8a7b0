"""Reads for the admin's lists of what Hookway recorded, at a size where counting rows
or listing distinct values the plain way reads the whole table (a million events: about
a second per page on either database).

Sync code, reached only through hookway.gate.
"""

from __future__ import annotations

from django.db import connection, models

from hookway.models import Event


def estimated_count(model: type[models.Model]) -> int | None:
    """About how many rows ``model``'s table holds, without reading them: PostgreSQL's
    planner statistics (``reltuples``, kept by ANALYZE and autovacuum), or on SQLite the
    span of rowids (an upper bound: rows deleted leave gaps). None when the database
    has no estimate yet (a PostgreSQL table never analyzed)."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
            row = cursor.fetchone()
            if row is None or row[0] is None or row[0] < 0:
                return None
            return int(row[0])
        # Each MIN / MAX alone reads one end of the rowid b-tree; both in one SELECT
        # would scan the table.
        cursor.execute(
            f"SELECT (SELECT MAX(rowid) FROM {table}) - (SELECT MIN(rowid) FROM {table}) + 1"  # noqa: S608 - a model's table name
        )
        row = cursor.fetchone()
        return int(row[0]) if row and row[0] is not None else 0


def event_names(limit: int) -> list[str]:
    """Up to ``limit`` distinct event names (not the empty one), in order.

    A skip scan of the event-name index: one index seek per name, however many events
    carry it, where ``SELECT DISTINCT`` would read every row."""
    table = connection.ops.quote_name(Event._meta.db_table)
    column = connection.ops.quote_name("event_name")
    sql = f"""
        WITH RECURSIVE names(name, n) AS (
            SELECT MIN({column}), 1 FROM {table} WHERE {column} > ''
            UNION ALL
            SELECT (SELECT MIN({column}) FROM {table} WHERE {column} > names.name), n + 1
            FROM names WHERE names.name IS NOT NULL AND n < %s
        )
        SELECT name FROM names WHERE name IS NOT NULL
    """  # noqa: S608 - fixed names
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]
