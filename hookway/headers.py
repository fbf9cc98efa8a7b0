"""Header names and what Hookway does with them: which carry a credential (never stored,
never forwarded), which Hookway sets itself on a delivery, which belong to one connection;
the checks a destination's extra headers and forwarding patterns pass (hookway.toml and
the admin); and which of an event's stored headers a destination forwards.

Plain functions, no Django: ingest, the config file, the admin, the store and the sender
all use them (docs/delivery.md, "The request").
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from hookway.secrets import UnresolvedSecret, require_secret, resolve_basic_auth

# A header whose name contains one of these says it carries a credential or a signature
# (with the body, a signature lets whoever reads it send the same webhook again): ingest
# never stores it, and so it is never forwarded (docs/ingest.md, "What is stored").
CREDENTIAL_WORDS = (
    "auth",
    "token",
    "secret",
    "password",
    "passwd",
    "cookie",
    "session",
    "credential",
    "signature",
    "api-key",
    "apikey",
    "api_key",
    "access-key",
    "private-key",
    "secret-key",
)

# RFC 9110 section 7.6.1: meaningful for one connection only, never passed on (nor any
# header a Connection header names).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)

# Set by Hookway on every delivery, or describing the body and connection it sends: a
# destination's static headers can't set them and forwarding never passes them on.
RESERVED = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "content-type",
        "content-length",
        "content-encoding",
        "host",
        "user-agent",
        "accept-encoding",
        "expect",
    }
)
RESERVED_PREFIX = "x-hookway-"

# Describe how the request reached Hookway (its proxies), not the event: not forwarded.
ARRIVAL = frozenset({"forwarded", "via", "x-real-ip"})
ARRIVAL_PREFIX = "x-forwarded-"

# RFC 9110 section 5.6.2: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
# What a pattern may hold: token characters and fnmatch's *, ?, [ and ].
_PATTERN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z?\[\]]+\Z")
# Field values may not hold control characters other than horizontal tab (RFC 9110
# section 5.5): a line break would end the header and start another.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


@lru_cache(maxsize=1024)
def is_credential_header(name: str) -> bool:
    """True for a header name that says it carries a credential or a signature.
    Cached: ingest asks it of every header of every webhook, and senders repeat their
    header names."""
    lowered = name.lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)


def is_reserved(name: str) -> bool:
    """True for a header Hookway sets itself on a delivery (docs/delivery.md)."""
    lowered = name.lower()
    return lowered in RESERVED or lowered.startswith(RESERVED_PREFIX)


def is_hop_by_hop(name: str) -> bool:
    return name.lower() in HOP_BY_HOP


def never_forwarded(name: str) -> str | None:
    """Why a header with this name is never forwarded, or None if it may be."""
    lowered = name.lower()
    if is_credential_header(lowered):
        return "its name says it carries a credential or a signature, which Hookway never stores"
    if is_hop_by_hop(lowered):
        return "it applies to one connection only"
    if is_reserved(lowered):
        return "Hookway sets it itself"
    if lowered in ARRIVAL or lowered.startswith(ARRIVAL_PREFIX):
        return "it describes how the request reached Hookway, not the event"
    return None


def name_problem(name: str) -> str | None:
    """What is wrong with ``name`` as a header name, or None."""
    if not _TOKEN.match(name):
        return f"{name!r} is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)"
    return None


def value_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a header value, or None."""
    if _CONTROL.search(value):
        return "the value holds a line break or another control character"
    return None


def token_problem(value: str) -> str | None:
    """What is wrong with ``value`` as a bearer token, or None."""
    if not value or any(c.isspace() for c in value) or _CONTROL.search(value):
        return "a bearer token must be non-empty, without spaces or control characters"
    return None


def static_header_problem(name: str, value: str) -> str | None:
    """What is wrong with ``name: value`` as one of a destination's static headers (the
    value a literal or ``env:NAME``), or None. Whether an ``env:`` variable is set is the
    caller's business: it depends on the process."""
    problem = name_problem(name)
    if problem is not None:
        return problem
    lowered = name.lower()
    if is_reserved(lowered):
        return f"{name} is set by Hookway itself and can't be set here"
    if is_hop_by_hop(lowered):
        return f"{name} applies to one connection only and can't be set here"
    if value.startswith("env:"):
        if value == "env:":
            return "'env:' needs a variable name, e.g. 'env:CI_TOKEN'"
        return None
    if is_credential_header(lowered):
        # Static headers are shown in the admin: a secret goes in the environment.
        return (
            f"{name} looks like a credential: give its value as 'env:NAME' (read from the "
            "environment when sending) so that no page shows it"
        )
    return value_problem(value)


def pattern_problem(pattern: str) -> str | None:
    """What is wrong with ``pattern`` as a forward_headers glob, or None."""
    if not _PATTERN.match(pattern):
        return f"{pattern!r} is not a header name pattern (header name characters, with * ? [ ])"
    if not any(c in pattern for c in "*?["):
        reason = never_forwarded(pattern)
        if reason is not None:
            return f"{pattern} is never forwarded: {reason}"
    return None


def duplicate_name(names: Iterable[str]) -> str | None:
    """The first name given twice, ignoring case, or None."""
    seen: set[str] = set()
    for name in names:
        if name.lower() in seen:
            return name
        seen.add(name.lower())
    return None


def forwarded(stored: Mapping[str, object], patterns: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """The stored request headers a destination forwards: those matching one of its glob
    ``patterns`` (case-insensitively), except any never_forwarded, named by the stored
    Connection header, or whose value can't be sent."""
    if not patterns:
        return ()
    lowered = [p.lower() for p in patterns]
    per_connection = {
        token.strip().lower()
        for name, value in stored.items()
        if name.lower() == "connection" and isinstance(value, str)
        for token in value.split(",")
    }
    kept = []
    for name, value in stored.items():
        name_l = name.lower()
        if not isinstance(value, str) or name_l in per_connection:
            continue
        if never_forwarded(name_l) is not None or name_problem(name) or value_problem(value):
            continue
        if any(fnmatch.fnmatchcase(name_l, p) for p in lowered):
            kept.append((name, value))
    return tuple(kept)


class DestinationHeaders(NamedTuple):
    """A destination's extra headers for one attempt, secrets resolved; or ``problem``,
    naming the key and the variable, when one can't be."""

    headers: tuple[tuple[str, str], ...] = ()
    bearer_token: str | None = None
    basic_auth: tuple[str, str] | None = None
    forwarded_headers: tuple[tuple[str, str], ...] = ()
    problem: str = ""


def _resolve(ref: str, env: Mapping[str, str] | None) -> str:
    return require_secret(ref, env) if ref.startswith("env:") else ref


def resolve(
    static: object,
    bearer_token: str,
    basic_auth: str,
    patterns: object,
    stored: Mapping[str, object] | None,
    env: Mapping[str, str] | None = None,
) -> DestinationHeaders:
    """Resolve a destination's static headers, auth and forwarded headers from what is
    stored (``env:`` values read now, so a changed variable counts from the next
    attempt). Never raises for a bad value: the result's ``problem`` says what it is."""
    key = "headers"
    try:
        if not isinstance(static, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in static.items()
        ):
            raise UnresolvedSecret("expected a JSON object of header names and string values")
        headers = []
        for name, ref in static.items():
            key = f"headers.{name}"
            value = _resolve(ref, env)
            # The rules for what may be configured are the config file's and the admin's;
            # here only what would break the request (the sender drops reserved names).
            problem = name_problem(name) or value_problem(value)
            if problem is not None:
                raise UnresolvedSecret(problem)
            headers.append((name, value))
        key, bearer = "bearer_token", None
        if bearer_token:
            bearer = _resolve(bearer_token, env)
            problem = token_problem(bearer)
            if problem is not None:
                raise UnresolvedSecret(problem)
        key = "basic_auth"
        basic = resolve_basic_auth(basic_auth, env) if basic_auth else None
        key = "forward_headers"
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise UnresolvedSecret("expected a JSON list of header name patterns")
    except UnresolvedSecret as exc:
        return DestinationHeaders(problem=f"{key}: {exc}")
    return DestinationHeaders(
        headers=tuple(headers),
        bearer_token=bearer,
        basic_auth=basic,
        forwarded_headers=forwarded(stored or {}, patterns),
    )
