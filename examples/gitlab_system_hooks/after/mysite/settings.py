import os
from pathlib import Path

from hookway import conf

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "systemhooks",
    "hookway.apps.HookwayConfig",
]
MIDDLEWARE = []
ROOT_URLCONF = "mysite.urls"

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("EXAMPLE_DB", BASE_DIR / "db.sqlite3"),
        # Hookway acknowledges a webhook once it is committed: fsync'd, in WAL mode.
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=FULL;",
        },
    }
}
HOOKWAY = conf.load()  # HOOKWAY_CONFIG=hookway.toml and the rest from the environment
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Hookway's ingest path (/hooks/…) skips the project's middleware: this list runs instead.
HOOKWAY_INGEST_MIDDLEWARE = []
STATIC_URL = "static/"
