"""Settings of the plain-Django ingest peers: the fastest honest plain-Django setup.

No middleware at all (the views are CSRF-exempt and use no sessions, auth or messages),
DEBUG off, one app. SQLite configured exactly like Hookway's: WAL, IMMEDIATE
transactions, ``synchronous=FULL`` so every committed (acknowledged) row is fsync-durable.

Persistent database connections (``CONN_MAX_AGE = None``), as a Django developer would
deploy a WSGI app: without them every request opens the SQLite file and runs the
``init_command`` PRAGMAs again. SQLite has no Django connection pool (that is
PostgreSQL's), so persistence is the best there is. Under ASGI Django opens a new thread
per request, and each thread has its own connection, so Django's docs say to turn
persistent connections off there: the async peer sets ``INGEST_CONN_MAX_AGE=0``.
"""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["bench.peers.ingest_site"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "bench.peers.ingest_site.urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        # "none" (the default): persistent, never closed for age; a number: seconds.
        "CONN_MAX_AGE": (
            None
            if os.environ.get("INGEST_CONN_MAX_AGE", "none") == "none"
            else int(os.environ["INGEST_CONN_MAX_AGE"])
        ),
        "NAME": os.environ.get("INGEST_DB", "/tmp/hookway-bench-ingest-peer.sqlite3"),
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 5,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=FULL;PRAGMA busy_timeout=5000;"
            ),
        },
    }
}
LOGGING = {"version": 1, "disable_existing_loggers": False}
