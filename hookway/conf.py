"""Hookway's settings: one typed object (``HookwaySettings``), read from the environment
(12-factor) and, in a host Django project, from ``settings.HOOKWAY`` overrides.

Every value is validated when the process starts: a bad value raises
``ImproperlyConfigured`` naming the variable (or the ``HOOKWAY`` key) and what it
expected, so a typo in a deployment fails loudly at boot instead of silently at the
first webhook.

Two users: the standalone server's settings (hookway.standalone.settings) call ``load()``
and put the result in ``settings.HOOKWAY``; a host project sets ``HOOKWAY`` to a dict
(``{"CONFIG": "hookway.toml", "EMBEDDED_DISPATCHER": False}``), which ``get()`` merges
over the environment with ``load_app()``. Hookway's code reads its settings only
through ``get()``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, TypeGuard, get_args
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured


def _base_dir() -> Path:
    # A checkout (manage.py beside the package) keeps its var/ in the checkout; an
    # installed package must not write into site-packages, so var/ is then the
    # working directory's.
    checkout = Path(__file__).resolve().parent.parent
    return checkout if (checkout / "manage.py").is_file() else Path.cwd()


BASE_DIR = _base_dir()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

# The dispatcher's HTTP transports (hookway.send.client), HOOKWAY_HTTP_TRANSPORT's values.
HttpTransport = Literal["httpx", "aiohttp"]
HTTP_TRANSPORTS: tuple[HttpTransport, ...] = get_args(HttpTransport)


def is_http_transport(name: str) -> TypeGuard[HttpTransport]:
    return name in HTTP_TRANSPORTS


def envstr(env: Mapping[str, str], name: str, default: str) -> str:
    return env.get(name, default)


def envbool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r}: expected a boolean (true/false, 1/0, yes/no, on/off)"
    )


def envint(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number >= {minimum}")
    return value


def envfloat(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number of seconds") from None
    if not value >= minimum or value == float("inf"):
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a finite number >= {minimum}")
    return value


def envlist(env: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    raw = env.get(name)
    if raw is None:
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def envemails(env: Mapping[str, str], name: str) -> list[str]:
    """Comma-separated email addresses; each checked by Django's own validator."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    addresses = envlist(env, name, [])
    for address in addresses:
        try:
            validate_email(address)
        except ValidationError:
            raise ImproperlyConfigured(
                f"{name}={env.get(name)!r}: {address!r} is not an email address "
                "(expected comma-separated addresses, e.g. 'ops@example.com,oncall@example.com')"
            ) from None
    return addresses


# Django's own email settings, read from variables of the same names by the standalone
# server (a project adding Hookway as an app sets them in its settings).
EMAIL_TEXT = ("EMAIL_BACKEND", "EMAIL_HOST", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD")
EMAIL_TEXT_MORE = ("EMAIL_FILE_PATH", "DEFAULT_FROM_EMAIL", "SERVER_EMAIL")
EMAIL_FLAGS = ("EMAIL_USE_TLS", "EMAIL_USE_SSL")


def email_settings(env: Mapping[str, str] | None = None) -> dict[str, object]:
    """The Django email settings given in the environment (only those set), checked."""
    env = os.environ if env is None else env
    found: dict[str, object] = {
        name: env[name] for name in (*EMAIL_TEXT, *EMAIL_TEXT_MORE) if env.get(name)
    }
    for name in EMAIL_FLAGS:
        if name in env:
            found[name] = envbool(env, name, False)
    if "EMAIL_PORT" in env:
        found["EMAIL_PORT"] = envint(env, "EMAIL_PORT", 25, minimum=1)
    if found.get("EMAIL_USE_TLS") and found.get("EMAIL_USE_SSL"):
        raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL: set one, not both")
    return found


def envseconds_list(
    env: Mapping[str, str], name: str, default: tuple[float, ...]
) -> tuple[float, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    values = []
    for item in raw.split(","):
        try:
            value = float(item.strip())
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}={raw!r}: expected comma-separated seconds, e.g. '0,5,300'"
            ) from None
        if not value >= 0 or value == float("inf"):
            raise ImproperlyConfigured(f"{name}={raw!r}: every delay must be a finite number >= 0")
        values.append(value)
    return tuple(values)


def origin_problem(origin: str) -> str | None:
    """What is wrong with ``origin`` as a CSRF trusted origin, or None. Django compares
    the browser's Origin header (``https://host[:port]``, nothing after it) with each."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return "expected scheme://host[:port] with a port from 0 to 65535"
    if parts.scheme not in {"http", "https"}:
        return "expected https://host[:port] (or http://): the scheme is required"
    if parts.path or parts.query or parts.fragment or "?" in origin or "#" in origin:
        return "expected scheme://host[:port] and nothing after it, not even a '/'"
    if "@" in parts.netloc or not parts.hostname or not _ORIGIN_HOST.match(parts.hostname):
        return "expected scheme://host[:port]: a host name, '*.' + a domain, or an address"
    if port is not None and port == 0:
        return "expected a port from 1 to 65535"
    return None


# A host name (or IPv4 address), optionally after "*." (its subdomains); or an IPv6 address.
_ORIGIN_HOST = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9.-]*[a-z0-9])?\Z|[0-9a-f:.]+\Z")


def envorigins(env: Mapping[str, str], name: str) -> list[str]:
    origins = envlist(env, name, [])
    for origin in origins:
        problem = origin_problem(origin)
        if problem is not None:
            raise ImproperlyConfigured(
                f"{name}: {origin!r}: {problem}, e.g. https://hooks.example.com"
            )
    return origins


def envaddresses(env: Mapping[str, str], name: str, default: str) -> list[str]:
    """Comma-separated IP addresses and networks, or "*" alone (anything)."""
    raw = env.get(name, default)
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if items == ["*"]:
        return items
    for item in items:
        try:
            ipaddress.ip_network(item, strict=True)
        except ValueError:
            hint = ""
            with contextlib.suppress(ValueError):
                hint = f" (did you mean {ipaddress.ip_network(item, strict=False)}?)"
            raise ImproperlyConfigured(
                f"{name}={raw!r}: {item!r} is not an IP address or network{hint}; expected "
                "comma-separated addresses or networks (10.0.0.5, 10.0.0.0/24) or '*' alone"
            ) from None
    return items


# Standard Webhooks' recommended schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h,
# 10 h, 14 h, 20 h, 24 h (the delay before attempt n+1 is entry n).
DEFAULT_RETRY_SCHEDULE: tuple[float, ...] = (
    0,
    5,
    5 * 60,
    30 * 60,
    2 * 3600,
    5 * 3600,
    10 * 3600,
    14 * 3600,
    20 * 3600,
    24 * 3600,
)


# Django needs a key to sign admin sessions (Hookway's own webhook verification never uses
# it). This one is public, so it is accepted only where that's harmless: DEBUG on, or
# `make run`'s demo (HOOKWAY_DEMO); `manage.py check --deploy` flags it (hookway.W001).
DEVELOPMENT_SECRET_KEY = "hookway-insecure-development-key-set-SECRET_KEY-in-production"
MAKE_A_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"


# Who may scrape /metrics without the token: this machine.
METRICS_ALLOWLIST = ("127.0.0.0/8", "::1")
METRICS_TOKEN_MIN = 16


def envtoken(env: Mapping[str, str], name: str) -> str:
    token = env.get(name, "").strip()
    if token and len(token) < METRICS_TOKEN_MIN:
        raise ImproperlyConfigured(
            f"{name}: expected a long random string (at least {METRICS_TOKEN_MIN} "
            f"characters), e.g. from {MAKE_A_KEY}"
        )
    return token


def envhostport(env: Mapping[str, str], name: str) -> tuple[str, int] | None:
    """``host:port`` (``[::1]:9464`` for IPv6), or None when unset."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(
            f"{name}={raw!r}: expected host:port, e.g. 127.0.0.1:9464 or 0.0.0.0:9464"
        )
    return host, int(port)


# uvicorn's and gunicorn's default for FORWARDED_ALLOW_IPS: a proxy on this machine.
FORWARDED_ALLOW_IPS = ("127.0.0.1", "::1")


# Each pruning statement lists a batch's ids as parameters: SQLite takes 32766 at most.
MAX_PRUNE_BATCH = 10_000
# Beyond this a young collection walks so much that it is a pause of its own; and
# gc.set_threshold refuses values past a C int.
MAX_GC_GEN0_THRESHOLD = 1_000_000


def default_sqlite_url() -> str:
    return f"sqlite:///{BASE_DIR / 'var' / 'hookway.sqlite3'}"


@dataclass(frozen=True)
class HookwaySettings:
    database_url: str
    config_path: Path | None
    secret_key: str
    debug: bool
    allowed_hosts: list[str]
    embedded_dispatcher: bool
    allow_private_destinations: bool
    private_destination_allowlist: list[str]
    retry_schedule: tuple[float, ...]
    db_timeout: float
    retry_after_seconds: int
    dispatcher_concurrency: int
    lease_seconds: float
    poll_interval: float
    shutdown_grace: float
    log_level: str
    loop_lag_file: Path | None = None
    http_transport: HttpTransport = "aiohttp"
    max_headers: int = 100
    max_header_bytes: int = 64 * 1024
    demo: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # Behind a TLS proxy (docs/operations.md, "Behind a TLS proxy").
    csrf_trusted_origins: list[str] = field(default_factory=list)
    trust_x_forwarded_proto: bool = False
    forwarded_allow_ips: list[str] = field(default_factory=lambda: list(FORWARDED_ALLOW_IPS))
    secure_cookies: bool = False
    # The operator API's /stats and /stream (docs/configuration.md, "Operator API").
    stats_timeout: float = 2.0
    stream_poll_interval: float = 1.0
    stream_heartbeat: float = 15.0
    stream_queue: int = 1000
    stream_backfill: int = 1000
    # Celery destinations' app, "module:attribute"; None: Celery's current app.
    celery_app: str | None = None
    # The dispatcher logs a warning when its event loop is blocked this long (a handler
    # doing blocking work on the loop, docs/handlers.md); 0 turns the watch off.
    loop_lag_warn_ms: float = 200.0
    # The cyclic garbage collector's youngest-generation threshold each Hookway process
    # raises to at startup (hookway.runtime.prepare_collector); 0 leaves it alone.
    gc_gen0_threshold: int = 2000
    # Where destination state changes are emailed (docs/delivery.md, "Notifications").
    notify_email: list[str] = field(default_factory=list)
    # Who may read /metrics (docs/operations.md, "Metrics"): these addresses, or anyone
    # sending this bearer token.
    metrics_allowlist: list[str] = field(default_factory=lambda: list(METRICS_ALLOWLIST))
    metrics_token: str = field(default="", repr=False)
    # A standalone dispatcher's own /metrics endpoint, (host, port); None: none.
    dispatcher_metrics_address: tuple[str, int] | None = None
    # Retention (docs/delivery.md, "Retention"): events older than this many days are
    # pruned with their deliveries and attempts; 0 keeps everything.
    retention_days: int = 30
    # Events with a dead delivery nobody replayed are kept this long (never less than
    # retention_days); 0 keeps them until replayed.
    dead_retention_days: int = 90
    # Events per pruning transaction, and seconds between the dispatcher's pruning runs.
    prune_batch: int = 500
    prune_interval: float = 600.0


def load(env: Mapping[str, str] | None = None, *, standalone: bool = True) -> HookwaySettings:
    """Read and validate every Hookway setting; raise ImproperlyConfigured on a bad one.

    ``standalone`` (the server's own settings): also the Django-level variables the
    server owns (DATABASE_URL, SECRET_KEY, DEBUG, ALLOWED_HOSTS, the proxy ones). A host
    project owns those itself, so ``load_app`` reads only HOOKWAY_* variables."""
    env = os.environ if env is None else env
    if not standalone:
        env = {
            name: value
            for name, value in env.items()
            if name.startswith("HOOKWAY_") and name not in _SERVER_ONLY
        }

    database_url = envstr(env, "DATABASE_URL", "").strip() or default_sqlite_url()
    scheme = urlsplit(database_url).scheme
    if scheme not in {"sqlite", "postgres", "postgresql", "pgsql"}:
        raise ImproperlyConfigured(
            f"DATABASE_URL={database_url!r}: expected sqlite:///path/to/file.sqlite3 or "
            "postgres://user:password@host:port/dbname"
        )

    config_raw = envstr(env, "HOOKWAY_CONFIG", "").strip()
    config_path = Path(config_raw) if config_raw else None
    if config_path is not None and not config_path.is_file():
        raise ImproperlyConfigured(f"HOOKWAY_CONFIG={config_raw!r}: no such file")

    debug = envbool(env, "DEBUG", False)
    demo = envbool(env, "HOOKWAY_DEMO", False)

    allowed_hosts = envlist(env, "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

    log_level = envstr(env, "HOOKWAY_LOG_LEVEL", "INFO").upper()
    if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ImproperlyConfigured(
            f"HOOKWAY_LOG_LEVEL={log_level!r}: expected DEBUG, INFO, WARNING, ERROR or CRITICAL"
        )

    http_transport = envstr(env, "HOOKWAY_HTTP_TRANSPORT", "aiohttp").strip().lower()
    if not is_http_transport(http_transport):
        raise ImproperlyConfigured(
            f"HOOKWAY_HTTP_TRANSPORT={http_transport!r}: expected httpx or aiohttp"
        )

    settings = HookwaySettings(
        database_url=database_url,
        config_path=config_path,
        secret_key=envstr(env, "SECRET_KEY", ""),
        debug=debug,
        allowed_hosts=allowed_hosts,
        embedded_dispatcher=envbool(env, "HOOKWAY_EMBEDDED_DISPATCHER", True),
        allow_private_destinations=envbool(env, "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS", False),
        private_destination_allowlist=envlist(env, "HOOKWAY_PRIVATE_DESTINATION_ALLOWLIST", []),
        retry_schedule=envseconds_list(env, "HOOKWAY_RETRY_SCHEDULE", DEFAULT_RETRY_SCHEDULE),
        db_timeout=envfloat(env, "HOOKWAY_DB_TIMEOUT", 5.0, minimum=0.05),
        retry_after_seconds=envint(env, "HOOKWAY_RETRY_AFTER", 5, minimum=1),
        dispatcher_concurrency=envint(env, "HOOKWAY_DISPATCHER_CONCURRENCY", 200, minimum=1),
        lease_seconds=envfloat(env, "HOOKWAY_LEASE_SECONDS", 60.0, minimum=1.0),
        poll_interval=envfloat(env, "HOOKWAY_POLL_INTERVAL", 1.0, minimum=0.01),
        shutdown_grace=envfloat(env, "HOOKWAY_SHUTDOWN_GRACE", 10.0, minimum=0.0),
        log_level=log_level,
        http_transport=http_transport,
        max_headers=envint(env, "HOOKWAY_MAX_HEADERS", 100, minimum=10),
        max_header_bytes=envint(env, "HOOKWAY_MAX_HEADER_BYTES", 64 * 1024, minimum=1024),
        demo=demo,
        csrf_trusted_origins=envorigins(env, "CSRF_TRUSTED_ORIGINS"),
        trust_x_forwarded_proto=envbool(env, "HOOKWAY_TRUST_X_FORWARDED_PROTO", False),
        # Read by uvicorn and gunicorn, not by Django: checked here because both servers
        # take a typo ("10.0.0.1/24", a host name) as a name no address matches, silently.
        forwarded_allow_ips=envaddresses(env, "FORWARDED_ALLOW_IPS", ",".join(FORWARDED_ALLOW_IPS)),
        secure_cookies=envbool(env, "HOOKWAY_SECURE_COOKIES", False),
        stats_timeout=envfloat(env, "HOOKWAY_STATS_TIMEOUT", 2.0, minimum=0.01),
        stream_poll_interval=envfloat(env, "HOOKWAY_STREAM_POLL_INTERVAL", 1.0, minimum=0.05),
        stream_heartbeat=envfloat(env, "HOOKWAY_STREAM_HEARTBEAT", 15.0, minimum=0.05),
        stream_queue=envint(env, "HOOKWAY_STREAM_QUEUE", 1000, minimum=1),
        stream_backfill=envint(env, "HOOKWAY_STREAM_BACKFILL", 1000, minimum=1),
        celery_app=envstr(env, "HOOKWAY_CELERY_APP", "").strip() or None,
        loop_lag_warn_ms=envfloat(env, "HOOKWAY_LOOP_LAG_WARN_MS", 200.0, minimum=0.0),
        gc_gen0_threshold=envint(env, "HOOKWAY_GC_GEN0_THRESHOLD", 2000, minimum=0),
        notify_email=envemails(env, "HOOKWAY_NOTIFY_EMAIL"),
        metrics_allowlist=envaddresses(
            env, "HOOKWAY_METRICS_ALLOWLIST", ",".join(METRICS_ALLOWLIST)
        ),
        metrics_token=envtoken(env, "HOOKWAY_METRICS_TOKEN"),
        dispatcher_metrics_address=envhostport(env, "HOOKWAY_DISPATCHER_METRICS_ADDRESS"),
        retention_days=envint(env, "HOOKWAY_RETENTION_DAYS", 30, minimum=0),
        dead_retention_days=envint(env, "HOOKWAY_DEAD_RETENTION_DAYS", 90, minimum=0),
        prune_batch=envint(env, "HOOKWAY_PRUNE_BATCH", 500, minimum=1),
        prune_interval=envfloat(env, "HOOKWAY_PRUNE_INTERVAL", 600.0, minimum=1.0),
        # "{pid}" in the name gives each worker process its own file.
        loop_lag_file=Path(env["HOOKWAY_LOOP_LAG_FILE"].replace("{pid}", str(os.getpid())))
        if env.get("HOOKWAY_LOOP_LAG_FILE")
        else None,
    )
    if settings.prune_batch > MAX_PRUNE_BATCH:
        raise ImproperlyConfigured(
            f"HOOKWAY_PRUNE_BATCH={settings.prune_batch}: expected at most {MAX_PRUNE_BATCH} "
            "(each batch is one short transaction; a large one holds up ingest's writes)"
        )
    if settings.gc_gen0_threshold > MAX_GC_GEN0_THRESHOLD:
        raise ImproperlyConfigured(
            f"HOOKWAY_GC_GEN0_THRESHOLD={settings.gc_gen0_threshold}: expected at most "
            f"{MAX_GC_GEN0_THRESHOLD:_} (0 leaves the garbage collector as it is)"
        )
    # Checked last, so a typo elsewhere is reported before the missing key.
    if standalone and not settings.secret_key.strip():
        if not (debug or demo):
            raise ImproperlyConfigured(
                "SECRET_KEY: must be set (a long random string), e.g. from "
                f"{MAKE_A_KEY}; only DEBUG=true or HOOKWAY_DEMO=true (make run's demo) "
                "allow Hookway's public development key"
            )
        settings = replace(settings, secret_key=DEVELOPMENT_SECRET_KEY)
    return settings


# Read only by the standalone server: in a host project they are the project's business.
_SERVER_ONLY = frozenset(
    {"HOOKWAY_DEMO", "HOOKWAY_TRUST_X_FORWARDED_PROTO", "HOOKWAY_SECURE_COOKIES"}
)

# The keys a host project's settings.HOOKWAY dict may hold: each overrides HOOKWAY_<KEY>.
APP_KEYS = (
    "CONFIG",
    "EMBEDDED_DISPATCHER",
    "ALLOW_PRIVATE_DESTINATIONS",
    "PRIVATE_DESTINATION_ALLOWLIST",
    "RETRY_SCHEDULE",
    "DB_TIMEOUT",
    "RETRY_AFTER",
    "DISPATCHER_CONCURRENCY",
    "LEASE_SECONDS",
    "POLL_INTERVAL",
    "SHUTDOWN_GRACE",
    "LOG_LEVEL",
    "HTTP_TRANSPORT",
    "MAX_HEADERS",
    "MAX_HEADER_BYTES",
    "LOOP_LAG_FILE",
    "STATS_TIMEOUT",
    "STREAM_POLL_INTERVAL",
    "STREAM_HEARTBEAT",
    "STREAM_QUEUE",
    "STREAM_BACKFILL",
    "CELERY_APP",
    "LOOP_LAG_WARN_MS",
    "GC_GEN0_THRESHOLD",
    "NOTIFY_EMAIL",
    "METRICS_ALLOWLIST",
    "METRICS_TOKEN",
    "DISPATCHER_METRICS_ADDRESS",
    "RETENTION_DAYS",
    "DEAD_RETENTION_DAYS",
    "PRUNE_BATCH",
    "PRUNE_INTERVAL",
)


def _as_text(key: str, value: object) -> str:
    """A settings.HOOKWAY value as the environment would spell it, so both are parsed
    (and refused) by the same code."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float | Path):
        return str(value)
    if isinstance(value, list | tuple) and all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value
    ):
        return ",".join(str(v) for v in value)
    raise ImproperlyConfigured(
        f"settings.HOOKWAY[{key!r}]={value!r}: expected a string, number, boolean, path "
        "or list of them"
    )


def load_app(overrides: object, env: Mapping[str, str] | None = None) -> HookwaySettings:
    """Hookway's settings in a host project: ``overrides`` (its ``settings.HOOKWAY``
    dict, keys as in APP_KEYS) over the HOOKWAY_* environment variables over the
    defaults. Raises ImproperlyConfigured naming the key or variable on a bad value."""
    if not isinstance(overrides, Mapping):
        raise ImproperlyConfigured(
            f"settings.HOOKWAY: expected a dict of Hookway settings, e.g. "
            f'{{"CONFIG": "hookway.toml"}}, not {type(overrides).__name__}'
        )
    env = dict(os.environ if env is None else env)
    for key, value in overrides.items():
        if key not in APP_KEYS:
            raise ImproperlyConfigured(
                f"settings.HOOKWAY[{key!r}]: not a Hookway setting; expected one of "
                + ", ".join(APP_KEYS)
            )
        env[f"HOOKWAY_{key}"] = _as_text(key, value)
    try:
        return load(env, standalone=False)
    except ImproperlyConfigured as exc:
        message = str(exc)
        for key in overrides:
            variable = f"HOOKWAY_{key}"
            if message.startswith((f"{variable}=", f"{variable}:")):
                message = f"settings.HOOKWAY[{key!r}]" + message.removeprefix(variable)
                break
        raise ImproperlyConfigured(message) from None


_resolved: tuple[object, HookwaySettings] | None = None


def get() -> HookwaySettings:
    """This process's Hookway settings: ``settings.HOOKWAY`` itself when it is a
    HookwaySettings (the standalone server), else its dict of overrides (or none)
    resolved by ``load_app`` once per value it is set to."""
    global _resolved
    from django.conf import settings

    raw = getattr(settings, "HOOKWAY", None)
    if isinstance(raw, HookwaySettings):
        return raw
    resolved = _resolved
    if resolved is not None and resolved[0] is raw:
        return resolved[1]
    value = load_app({} if raw is None else raw)
    _resolved = (raw, value)
    return value
