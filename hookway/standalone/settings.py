"""Django settings for the standalone Hookway server (``make run``, ``./manage.py``,
``hookway.asgi:application``). Every knob comes from the environment via hookway.conf.

A project that adds Hookway to its own settings does not use this module: see
docs/django-app.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dj_database_url

from hookway import conf

HOOKWAY = conf.load()
BASE_DIR = conf.BASE_DIR

SECRET_KEY = HOOKWAY.secret_key
DEBUG = HOOKWAY.debug
ALLOWED_HOSTS = HOOKWAY.allowed_hosts

# Behind a TLS proxy (docs/operations.md, "Behind a TLS proxy"). Django accepts an admin
# form only if the browser's Origin is the scheme and host it saw, or a trusted origin.
CSRF_TRUSTED_ORIGINS = HOOKWAY.csrf_trusted_origins
# Believe X-Forwarded-Proto from any client: only when nothing but the proxy reaches
# Hookway. uvicorn and gunicorn already take it from FORWARDED_ALLOW_IPS's addresses.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if HOOKWAY.trust_x_forwarded_proto else None
)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = HOOKWAY.secure_cookies
# Says why a form was refused, and which setting fixes it, even with DEBUG off.
CSRF_FAILURE_VIEW = "hookway.csrf.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",  # the API docs' Swagger UI, served from static files (no CDN)
    "hookway.apps.HookwayConfig",
    "hookway.console.apps.ConsoleConfig",  # the operator console at / (docs/console.md)
]

MIDDLEWARE = [
    # First, so its timing and request id cover everything below it.
    "hookway.middleware.RequestTimingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# The chain for /hooks/… (see hookway.asgi_handler.IngestASGIHandler): async-only middleware.
# (Hookway's default too, when a host project sets none.)
HOOKWAY_INGEST_MIDDLEWARE = [
    "hookway.middleware.RequestTimingMiddleware",
    "hookway.middleware.AllowedHostsMiddleware",
]

ROOT_URLCONF = "hookway.standalone.urls"
# Webhook senders POST to /hooks/<slug> without a slash as often as with one; the URL
# pattern accepts both, so never redirect a POST (it would lose the body).
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

ASGI_APPLICATION = "hookway.asgi.application"


def _database(url: str) -> dict[str, Any]:
    db: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=0))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at
        # BEGIN so two writers queue on the busy timeout instead of failing with
        # "database is locked" mid-transaction; synchronous=FULL fsyncs every commit,
        # so an acknowledged webhook survives power loss.
        db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": HOOKWAY.db_timeout,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=FULL;PRAGMA foreign_keys=ON;"
                f"PRAGMA busy_timeout={int(HOOKWAY.db_timeout * 1000)};"
            ),
        }
        # pytest-django creates the test database beside the real one, as a file, so a
        # real server process started by the end-to-end tests can open it too.
        name = str(db["NAME"])
        if name != ":memory:":
            Path(name).parent.mkdir(parents=True, exist_ok=True)
        db["TEST"] = {"NAME": name.removesuffix(".sqlite3") + "-test.sqlite3"}
    else:
        timeout_ms = int(HOOKWAY.db_timeout * 1000)
        db["OPTIONS"] = {
            # Django's psycopg 3 pool: a connection per request thread without a
            # reconnect each time. A pool that can't hand out a connection in time
            # raises, which ingest turns into 503 + Retry-After.
            "pool": {"min_size": 2, "max_size": 20, "timeout": HOOKWAY.db_timeout},
            "options": f"-c statement_timeout={timeout_ms} -c lock_timeout={timeout_ms}",
        }
        db["CONN_MAX_AGE"] = 0
        # The pool checks a connection before handing it out, so one terminated by the
        # server (a restart, pg_terminate_backend) is replaced, not given to a request.
        db["CONN_HEALTH_CHECKS"] = True
    return db


DATABASES = {"default": _database(HOOKWAY.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
# Times with seconds and their zone (hookway/formats).
FORMAT_MODULE_PATH = "hookway.formats"

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# Served by hookway.static (WhiteNoise's responders over ASGI). Files are found in the
# apps' static folders, so the admin is styled without collectstatic; collectstatic adds
# compressed variants (gzip, brotli when installed) that WhiteNoise then prefers.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Email (destination state notifications, HOOKWAY_NOTIFY_EMAIL): Django's settings of the
# same names, from the environment (EMAIL_BACKEND, EMAIL_HOST, EMAIL_PORT, …).
globals().update(conf.email_settings())

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(message)s"},
        # logging.Formatter appends the traceback of a record logged with exc_info.
        "error": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "errors": {"class": "logging.StreamHandler", "formatter": "error"},
    },
    "loggers": {
        "hookway": {"handlers": ["console"], "level": HOOKWAY.log_level, "propagate": False},
        # Django's default sends these only to mail_admins when DEBUG is off (and Hookway
        # sets no ADMINS), so a 500 would print nothing. ERROR: 4xx are warnings here and
        # ingest answers plenty of them.
        "django.request": {"handlers": ["errors"], "level": "ERROR", "propagate": False},
    },
}
