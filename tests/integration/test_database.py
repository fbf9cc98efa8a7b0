import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


def test_sqlite_connection_is_wal_with_full_fsync_or_postgres_pool():
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0] == "wal"
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 2  # FULL: fsync on every commit
        else:
            assert connection.vendor == "postgresql"
            assert connection.pool is not None
            cursor.execute("SHOW statement_timeout")
            assert cursor.fetchone()[0] != "0"
