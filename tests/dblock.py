"""Hold the test database's write lock from a connection of our own, as another process
would, to test what ingest does while the database is busy."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


@contextmanager
def database_write_lock() -> Iterator[Any]:
    """Take the write lock; yield the holding connection (its ``rollback()`` releases the
    lock early, from any thread); release it on exit."""
    settings = connection.settings_dict
    holder: Any
    if connection.vendor == "sqlite":
        # isolation_level=None: sqlite3 sends our BEGIN as written, no implicit ones.
        holder = sqlite3.connect(settings["NAME"], isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
    else:
        import psycopg

        holder = psycopg.connect(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user=settings["USER"] or "postgres",
            password=settings["PASSWORD"] or None,
            dbname=settings["NAME"],
        )
        holder.execute("LOCK TABLE hookway_event IN ACCESS EXCLUSIVE MODE")
    try:
        yield holder
    finally:
        holder.rollback()
        holder.close()
