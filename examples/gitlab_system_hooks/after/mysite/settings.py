import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ["SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "systemhooks",
    "hookway",
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
# Hookway's settings (docs/django-app.md): its config file; the rest keeps its defaults.
HOOKWAY = {"CONFIG": BASE_DIR / "hookway.toml"}
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
