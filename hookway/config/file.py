"""Parse and validate a ``hookway.toml`` file (the contract in docs/configuration.md).

Every problem is reported with its place (``sources[2].verify``) and what was expected;
nothing is half-applied: a file with one error is rejected whole.
"""

from __future__ import annotations

import importlib.util
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hookway import handlers
from hookway.headers import (
    duplicate_name,
    name_problem,
    pattern_problem,
    static_header_problem,
    token_problem,
    value_problem,
)
from hookway.inbound import VerifyScheme
from hookway.models import ONE_MIB
from hookway.policy import (
    DEFAULT_CIRCUIT_COOLDOWN,
    DEFAULT_CIRCUIT_FAILURES,
    DEFAULT_DISABLE_AFTER,
    MAX_CIRCUIT_COOLDOWN,
    parse_duration,
    rate_problem,
)
from hookway.routing import lanes, rules

# resolve_secret lives in hookway.secrets (the admin uses it too); ingest and the store
# import it from here.
from hookway.secrets import decode_whsec, resolve_secret


class ConfigError(ValueError):
    """The config file is unreadable or invalid; the message names the file and the key."""


# \Z, not $: "$" also matches before a trailing newline, which would let "gitlab\n" in.
SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62})\Z")
SCHEMES = {scheme.value for scheme in VerifyScheme}
MAX_URL_LENGTH = 2000  # Destination.url's max_length
MAX_AUTH_LENGTH = 500  # Destination.bearer_token's and basic_auth's max_length


@dataclass(frozen=True)
class SourceConfig:
    slug: str
    verify: VerifyScheme = VerifyScheme.NONE
    secrets: tuple[str, ...] = ()
    require_event_name: bool = False
    max_body_bytes: int = ONE_MIB
    enabled: bool = True


@dataclass(frozen=True)
class DestinationConfig:
    name: str
    # Exactly one of url, handler ("module:function") and celery_task (a task name).
    url: str = ""
    signing_secret: str = ""
    timeout_seconds: float = 15.0
    max_attempts: int = 10
    concurrency: int = 20
    enabled: bool = True
    # Static headers, each value a literal or env:NAME, in the file's order.
    headers: tuple[tuple[str, str], ...] = ()
    bearer_token: str = ""
    # As stored: env:NAME (holding user:password), or user:password whose password is a
    # literal or env:NAME (the file's { user, password } table becomes the latter).
    basic_auth: str = ""
    forward_headers: tuple[str, ...] = ()
    handler: str = ""
    celery_task: str = ""
    # Delivery policies (docs/delivery.md): "50/s", "3000/min" or "" for none; the
    # circuit breaker (0 failures: none); disabled after failing this long (0: never).
    rate_limit: str = ""
    circuit_failures: int = DEFAULT_CIRCUIT_FAILURES
    circuit_cooldown_seconds: float = DEFAULT_CIRCUIT_COOLDOWN
    disable_after_seconds: float = DEFAULT_DISABLE_AFTER
    # Ordered delivery (docs/delivery.md, "Ordered delivery"); on_dead: "skip" or "block".
    ordered: bool = False
    on_dead: str = "skip"
    # Ordered only: a CEL expression giving each delivery its lane's key (hookway.routing
    # .lanes); "" for one lane.
    order_key: str = ""


@dataclass(frozen=True)
class RouteConfig:
    source: str
    destination: str
    events: tuple[str, ...] = ()
    # hookway.routing: a CEL filter, a $-operator match document, a CEL transform.
    filter: str = ""
    match: dict[str, Any] = field(default_factory=dict)
    transform: str = ""


@dataclass(frozen=True)
class HookwayConfig:
    sources: tuple[SourceConfig, ...] = ()
    destinations: tuple[DestinationConfig, ...] = ()
    routes: tuple[RouteConfig, ...] = field(default=())
    # [notifications] destination: the destination told of other destinations' state
    # changes; "" for none.
    notification_destination: str = ""


def destination_url_problem(url: str) -> str | None:
    """Return what is wrong with ``url`` as a destination URL, or None if nothing is."""
    try:
        parts = urlsplit(url)
        valid = parts.scheme in {"http", "https"} and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        valid = False
    if not valid:
        return f"{url!r} must be an absolute http:// or https:// URL"
    if len(url) > MAX_URL_LENGTH:  # the column's size: PostgreSQL would refuse it at sync
        return f"longer than {MAX_URL_LENGTH} characters"
    # Read the port from the text: SplitResult.port raises only when read (so a bad port
    # would pass here and fail at the first delivery), and some Python versions let int()
    # accept "+80" or non-ASCII digits.
    host_port = parts.netloc.rpartition("@")[2]
    port = host_port.rpartition("]")[2] if host_port.startswith("[") else host_port
    _, colon, port = port.partition(":")
    if colon and port:
        if not (port.isascii() and port.isdigit()):
            return f"port {port!r} is not a number"
        if not 1 <= int(port) <= 65535:
            return f"port {int(port)} is out of range (1-65535)"
    return None


class _Table:
    """One ``[[sources]]``-style table, read key by key with the key's place in errors."""

    def __init__(self, where: str, data: Any, allowed: set[str]):
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a table")
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})"
            )
        self.where = where
        self.data = data

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        if key not in self.data:
            if required or default is None:
                raise ConfigError(f"{self.where}.{key}: required")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise ConfigError(f"{self.where}.{key}: expected a string, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.where}.{key}: expected true or false, got {value!r}")
        return value

    def whole(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise ConfigError(
                f"{self.where}.{key}: expected a whole number from {minimum} to {maximum}, "
                f"got {value!r}"
            )
        return value

    def number(self, key: str, default: float, *, minimum: float, maximum: float) -> float:
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.where}.{key}: expected a number, got {value!r}")
        if not minimum <= value <= maximum:
            raise ConfigError(f"{self.where}.{key}: expected {minimum} to {maximum}, got {value!r}")
        return float(value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.where}.{key}: expected a string or a list of strings")
        return tuple(value)


def _is_whsec(value: str) -> bool:
    return value.startswith("whsec_") and decode_whsec(value) is not None


def _check_secret_refs(where: str, refs: tuple[str, ...], env: Mapping[str, str]) -> None:
    for ref in refs:
        if ref.startswith("env:"):
            name = ref[4:]
            if not name:
                raise ConfigError(f"{where}: 'env:' needs a variable name, e.g. 'env:GITLAB_TOKEN'")
            if not env.get(name):
                raise ConfigError(f"{where}: environment variable {name} is not set or empty")


def _check_set(where: str, ref: str, env: Mapping[str, str]) -> str:
    """Return the value of a literal or env:NAME reference; raise if the variable is unset."""
    _check_secret_refs(where, (ref,), env)
    return resolve_secret(ref, env) or ""  # never "": an unset variable was refused


def _key(where: str, name: str) -> str:
    return f"{where}.{name}" if name_problem(name) is None else f"{where}[{name!r}]"


def _static_headers(t: _Table, env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    raw = t.data.get("headers", {})
    where = f"{t.where}.headers"
    if not isinstance(raw, dict):
        raise ConfigError(
            f'{where}: expected a table of header names and values, e.g. {{ "X-Team" = "ops" }}'
        )
    for name, value in raw.items():
        key = _key(where, name)
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        problem = static_header_problem(name, value)
        if problem is not None:
            raise ConfigError(f"{key}: {problem}")
        if value.startswith("env:"):
            problem = value_problem(_check_set(key, value, env))
            if problem is not None:
                raise ConfigError(f"{key}: environment variable {value[4:]}: {problem}")
    twice = duplicate_name(raw)
    if twice is not None:
        raise ConfigError(f"{_key(where, twice)}: given twice (header names ignore case)")
    return tuple(raw.items())


def _bearer_token(t: _Table, env: Mapping[str, str]) -> str:
    ref = t.text("bearer_token", "")
    where = f"{t.where}.bearer_token"
    if not ref:
        return ""
    if len(ref) > MAX_AUTH_LENGTH:
        raise ConfigError(f"{where}: longer than {MAX_AUTH_LENGTH} characters")
    problem = token_problem(_check_set(where, ref, env))
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return ref


def _basic_auth(t: _Table, env: Mapping[str, str]) -> str:
    raw = t.data.get("basic_auth", "")
    where = f"{t.where}.basic_auth"
    if isinstance(raw, dict):
        pair = _Table(where, raw, {"user", "password"})
        user = pair.text("user", required=True)
        password = pair.text("password", required=True)
        if not user or ":" in user or value_problem(user):
            raise ConfigError(f"{where}.user: {user!r} must be non-empty, without ':'")
        if not password:
            raise ConfigError(f"{where}.password: must not be empty")
        _check_set(f"{where}.password", password, env)
        ref = f"{user}:{password}"
    elif isinstance(raw, str):
        ref = raw
        if ref.startswith("env:"):
            value = _check_set(where, ref, env)
            if not value.partition(":")[0] or ":" not in value:
                raise ConfigError(
                    f"{where}: environment variable {ref[4:]} must hold user:password"
                )
        elif ref:
            user, colon, password = ref.partition(":")
            if not (colon and user):
                raise ConfigError(
                    f'{where}: expected {{ user = "…", password = "env:NAME" }}, '
                    '"env:NAME" (holding user:password) or "user:password"'
                )
            if password.startswith("env:"):
                _check_set(where, password, env)
    else:
        raise ConfigError(
            f'{where}: expected {{ user = "…", password = "env:NAME" }} or a string, got {raw!r}'
        )
    if len(ref) > MAX_AUTH_LENGTH:
        raise ConfigError(f"{where}: longer than {MAX_AUTH_LENGTH} characters")
    return ref


def _forward_headers(t: _Table) -> tuple[str, ...]:
    patterns = t.texts("forward_headers")
    for i, pattern in enumerate(patterns):
        problem = pattern_problem(pattern)
        if problem is not None:
            raise ConfigError(f"{t.where}.forward_headers[{i}]: {problem}")
    return patterns


def _source(where: str, raw: Any, env: Mapping[str, str]) -> SourceConfig:
    t = _Table(
        where,
        raw,
        {"slug", "verify", "secret", "require_event_name", "max_body_bytes", "enabled"},
    )
    slug = t.text("slug", required=True)
    if not SLUG_RE.match(slug):
        raise ConfigError(
            f"{t.where}.slug: {slug!r} must be 1-63 lowercase letters, digits, '-' or '_'"
        )
    name = t.text("verify", VerifyScheme.NONE.value)
    if name not in SCHEMES:
        raise ConfigError(f"{t.where}.verify: {name!r} is not one of {', '.join(sorted(SCHEMES))}")
    verify = VerifyScheme(name)
    secrets = t.texts("secret")
    if verify != VerifyScheme.NONE and not secrets:
        raise ConfigError(f"{t.where}.secret: verify = {name!r} needs a secret")
    _check_secret_refs(f"{t.where}.secret", secrets, env)
    if verify == VerifyScheme.STANDARD_WEBHOOKS:
        for ref in secrets:
            value = resolve_secret(ref, env)
            if value is not None and not _is_whsec(value):
                raise ConfigError(
                    f"{t.where}.secret: a standard-webhooks secret must be 'whsec_' + base64"
                )
    return SourceConfig(
        slug=slug,
        verify=verify,
        secrets=secrets,
        require_event_name=t.flag("require_event_name", False),
        max_body_bytes=t.whole("max_body_bytes", ONE_MIB, minimum=1, maximum=64 * ONE_MIB),
        enabled=t.flag("enabled", True),
    )


def _destination(where: str, raw: Any, env: Mapping[str, str]) -> DestinationConfig:
    t = _Table(
        where,
        raw,
        {
            "name",
            "url",
            "signing_secret",
            "timeout_seconds",
            "max_attempts",
            "concurrency",
            "enabled",
            "headers",
            "bearer_token",
            "basic_auth",
            "forward_headers",
            "handler",
            "celery_task",
            "rate_limit",
            "circuit_failures",
            "circuit_cooldown_seconds",
            "disable_after",
            "ordered",
            "on_dead",
            "order_key",
        },
    )
    name = t.text("name", required=True)
    if not SLUG_RE.match(name):
        raise ConfigError(
            f"{t.where}.name: {name!r} must be 1-63 lowercase letters, digits, '-' or '_'"
        )
    kinds = [key for key in ("url", "handler", "celery_task") if key in t.data]
    if len(kinds) != 1:
        given = " and ".join(kinds) if kinds else "none of them"
        raise ConfigError(
            f"{t.where}: set exactly one of url, handler, celery_task ({given} given)"
        )
    url = t.text("url", "")
    handler = _handler(t)
    celery_task = _celery_task(t)
    if handler or celery_task:
        http_only = [k for k in HTTP_ONLY_KEYS if k in t.data]
        if http_only:
            raise ConfigError(
                f"{t.where}.{http_only[0]}: only for url destinations (this one is a "
                f"{kinds[0].replace('_', ' ')})"
            )
    else:
        problem = destination_url_problem(url)
        if problem is not None:
            raise ConfigError(f"{t.where}.url: {problem}")
    signing_secret = t.text("signing_secret", "")
    if signing_secret:
        _check_secret_refs(f"{t.where}.signing_secret", (signing_secret,), env)
        value = resolve_secret(signing_secret, env)
        if value is not None and not _is_whsec(value):
            raise ConfigError(f"{t.where}.signing_secret: expected 'whsec_' + base64")
    headers = _static_headers(t, env)
    bearer_token = _bearer_token(t, env)
    basic_auth = _basic_auth(t, env)
    if bearer_token and basic_auth:
        raise ConfigError(f"{t.where}.basic_auth: set bearer_token or basic_auth, not both")
    auth_key = "bearer_token" if bearer_token else "basic_auth" if basic_auth else ""
    for header, _ in headers:
        if header.lower() == "authorization" and auth_key:
            raise ConfigError(
                f"{t.where}.headers.{header}: {auth_key} sets Authorization already; set one"
            )
        if header.lower() == "authorization":
            auth_key = f"headers.{header}"
    if auth_key and urlsplit(url).netloc.rpartition("@")[1]:
        raise ConfigError(
            f"{t.where}.url: carries user:password@ and {auth_key} sets Authorization too; "
            "move the credentials to basic_auth"
        )
    return DestinationConfig(
        name=name,
        url=url,
        signing_secret=signing_secret,
        timeout_seconds=t.number("timeout_seconds", 15.0, minimum=0.1, maximum=600),
        max_attempts=t.whole("max_attempts", 10, minimum=1, maximum=100),
        concurrency=t.whole("concurrency", 20, minimum=1, maximum=10_000),
        enabled=t.flag("enabled", True),
        headers=headers,
        bearer_token=bearer_token,
        basic_auth=basic_auth,
        forward_headers=_forward_headers(t),
        handler=handler,
        celery_task=celery_task,
        rate_limit=_rate_limit(t),
        circuit_failures=t.whole(
            "circuit_failures", DEFAULT_CIRCUIT_FAILURES, minimum=0, maximum=10_000
        ),
        circuit_cooldown_seconds=t.number(
            "circuit_cooldown_seconds",
            DEFAULT_CIRCUIT_COOLDOWN,
            minimum=0.1,
            maximum=MAX_CIRCUIT_COOLDOWN,
        ),
        disable_after_seconds=_disable_after(t),
        ordered=t.flag("ordered", False),
        on_dead=_on_dead(t),
        order_key=_order_key(t),
    )


def _rate_limit(t: _Table) -> str:
    text = t.text("rate_limit", "").strip()
    problem = rate_problem(text)
    if problem is not None:
        raise ConfigError(f"{t.where}.rate_limit: {problem}")
    if "rate_limit" in t.data and not text:
        raise ConfigError(f"{t.where}.rate_limit: must not be empty (leave it out for no limit)")
    return text


def _disable_after(t: _Table) -> float:
    if "disable_after" not in t.data:
        return DEFAULT_DISABLE_AFTER
    try:
        return parse_duration(t.data["disable_after"])
    except ValueError as exc:
        raise ConfigError(f"{t.where}.disable_after: {exc} (0: never)") from None


def _order_key(t: _Table) -> str:
    text = t.text("order_key", "")
    if not text:
        if "order_key" in t.data:
            raise ConfigError(f"{t.where}.order_key: must not be empty (leave it out for one lane)")
        return ""
    try:
        lanes.check(text)
    except lanes.RuleError as exc:
        raise ConfigError(f"{t.where}.order_key: {exc}") from None
    if not t.flag("ordered", False):
        raise ConfigError(
            f"{t.where}.order_key: only for an ordered destination (set ordered = true, "
            "or remove order_key)"
        )
    return text


ON_DEAD = ("skip", "block")


def _on_dead(t: _Table) -> str:
    value = t.text("on_dead", "skip")
    if value not in ON_DEAD:
        raise ConfigError(
            f'{t.where}.on_dead: expected "skip" (a dead delivery lets the next one go) or '
            f'"block" (later deliveries wait until it is replayed), got {value!r}'
        )
    return value


# What only an HTTP request has: a handler or a Celery task gets the event itself.
HTTP_ONLY_KEYS = ("signing_secret", "headers", "bearer_token", "basic_auth", "forward_headers")
MAX_TARGET_LENGTH = 300  # Destination.handler's and celery_task's max_length


def _handler(t: _Table) -> str:
    target = t.text("handler", "")
    if not target:
        if "handler" in t.data:
            raise ConfigError(f"{t.where}.handler: must not be empty")
        return ""
    if len(target) > MAX_TARGET_LENGTH:
        raise ConfigError(f"{t.where}.handler: longer than {MAX_TARGET_LENGTH} characters")
    try:
        handlers.resolve(target)
    except handlers.HandlerNotFound as exc:
        raise ConfigError(f"{t.where}.handler: {exc}") from None
    return target


def _celery_task(t: _Table) -> str:
    task = t.text("celery_task", "")
    if not task:
        if "celery_task" in t.data:
            raise ConfigError(f"{t.where}.celery_task: must not be empty")
        return ""
    if len(task) > MAX_TARGET_LENGTH or not CELERY_TASK_RE.match(task):
        raise ConfigError(
            f"{t.where}.celery_task: {task!r} is not a task name (e.g. 'myapp.tasks.process_hook')"
        )
    if importlib.util.find_spec("celery") is None:
        raise ConfigError(
            f"{t.where}.celery_task: Celery is not installed in this environment; "
            "install it with: pip install 'hookway[celery]'"
        )
    return task


CELERY_TASK_RE = re.compile(r"^[\w.:-]+\Z")


def _route(index: int, raw: Any) -> RouteConfig:
    t = _Table(
        f"routes[{index}]", raw, {"source", "destination", "events", "filter", "match", "transform"}
    )
    # Any string is a valid glob for fnmatch (an unclosed "[" matches itself).
    events = t.texts("events")
    filter_text = t.text("filter", "")
    transform = t.text("transform", "")
    match_doc = t.data.get("match", {})
    try:
        rules.check(filter_text, match_doc, transform)
    except rules.RuleError as exc:
        raise ConfigError(f"{t.where}.{exc}") from None
    return RouteConfig(
        source=t.text("source", required=True),
        destination=t.text("destination", required=True),
        events=events,
        filter=filter_text,
        match=dict(match_doc),
        transform=transform,
    )


def check_source(
    raw: Mapping[str, Any], *, where: str = "source", env: Mapping[str, str] | None = None
) -> SourceConfig:
    """Validate one source given as a ``[[sources]]`` table would be (the operator API
    builds one from its request); return it or raise ConfigError naming the key."""
    return _source(where, dict(raw), os.environ if env is None else env)


def check_destination(
    raw: Mapping[str, Any], *, where: str = "destination", env: Mapping[str, str] | None = None
) -> DestinationConfig:
    """Validate one destination given as a ``[[destinations]]`` table would be; return it
    or raise ConfigError naming the key."""
    return _destination(where, dict(raw), os.environ if env is None else env)


def parse(
    text: str, *, name: str = "hookway.toml", env: Mapping[str, str] | None = None
) -> HookwayConfig:
    """Parse config text; return a HookwayConfig or raise ConfigError naming the problem."""
    env = os.environ if env is None else env
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"sources", "destinations", "routes", "notifications"})
    if unknown:
        raise ConfigError(
            f"{name}: unknown top-level key {unknown[0]!r} (expected [[sources]], "
            "[[destinations]], [[routes]], [notifications])"
        )
    for key in ("sources", "destinations", "routes"):
        if not isinstance(data.get(key, []), list):
            raise ConfigError(f"{name}: {key} must be an array of tables ([[{key}]])")
    try:
        sources = tuple(
            _source(f"sources[{i}]", raw, env) for i, raw in enumerate(data.get("sources", []))
        )
        destinations = tuple(
            _destination(f"destinations[{i}]", raw, env)
            for i, raw in enumerate(data.get("destinations", []))
        )
        routes = tuple(_route(i, raw) for i, raw in enumerate(data.get("routes", [])))
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None

    def unique(kind: str, values: list[str]) -> None:
        seen: set[str] = set()
        for value in values:
            if value in seen:
                raise ConfigError(f"{name}: {kind} {value!r} is defined twice")
            seen.add(value)

    unique("source", [s.slug for s in sources])
    unique("destination", [d.name for d in destinations])
    unique("route", [f"{r.source} -> {r.destination}" for r in routes])
    source_slugs = {s.slug for s in sources}
    destination_names = {d.name for d in destinations}
    for i, route in enumerate(routes):
        if route.source not in source_slugs:
            raise ConfigError(
                f"{name}: routes[{i}].source: no source {route.source!r} in this file"
            )
        if route.destination not in destination_names:
            raise ConfigError(
                f"{name}: routes[{i}].destination: no destination {route.destination!r} in this file"
            )
    notify = ""
    if "notifications" in data:
        try:
            notify = _notifications(data["notifications"])
        except ConfigError as exc:
            raise ConfigError(f"{name}: {exc}") from None
        if notify not in destination_names:
            raise ConfigError(
                f"{name}: notifications.destination: no destination {notify!r} in this file"
            )
    return HookwayConfig(
        sources=sources,
        destinations=destinations,
        routes=routes,
        notification_destination=notify,
    )


def _notifications(raw: Any) -> str:
    t = _Table("notifications", raw, {"destination"})
    return t.text("destination", required=True)


def load(path: Path, env: Mapping[str, str] | None = None) -> HookwayConfig:
    """Read and parse the file at ``path``; raise ConfigError if it can't be read or is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: can't read: {exc}") from None
    return parse(text, name=str(path), env=env)
