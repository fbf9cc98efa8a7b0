"""Secret references and how to show them without showing them.

A secret in a source's ``secrets`` or a destination's ``signing_secret``, ``bearer_token``
or static header values is a literal or ``env:NAME`` (read from the environment when it
is used). A destination's ``basic_auth`` is ``env:NAME`` (the variable holds
``user:password``) or ``user:password`` whose password is a literal or ``env:NAME``. Anything that lists sources or
destinations (the admin today) shows a secret as ``set, fingerprint 3f9a1c2b``: the first
8 hex digits of its SHA-256, enough to tell two secrets apart or match one against a
sender's settings, never the value. An ``env:`` reference is not itself secret: it is
shown by name, with whether the variable is set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit


def resolve_secret(ref: str, env: Mapping[str, str] | None = None) -> str | None:
    """Return the secret a reference names (``env:NAME`` or a literal); None if unset."""
    env = os.environ if env is None else env
    if ref.startswith("env:"):
        value = env.get(ref[4:])
        return value if value else None
    return ref


class UnresolvedSecret(ValueError):
    """A reference names an environment variable that is unset or empty, or that holds
    something unusable; the message names the variable, never its value."""


def require_secret(ref: str, env: Mapping[str, str] | None = None) -> str:
    """Return the secret a reference names; raise UnresolvedSecret if it is unset."""
    value = resolve_secret(ref, env)
    if value is None:
        raise UnresolvedSecret(f"environment variable {ref[4:]} is not set or empty")
    return value


def resolve_basic_auth(ref: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """Return the (user, password) a ``basic_auth`` reference names; raise
    UnresolvedSecret if a variable it names is unset or holds no ``user:password``."""
    if ref.startswith("env:"):
        user, colon, password = require_secret(ref, env).partition(":")
        if not (colon and user):
            raise UnresolvedSecret(
                f"environment variable {ref[4:]} must hold user:password (it has no ':' or no user)"
            )
        return user, password
    user, colon, password = ref.partition(":")
    if not (colon and user):
        raise UnresolvedSecret("basic auth must be user:password, user:env:NAME or env:NAME")
    if password.startswith("env:"):
        password = require_secret(password, env)
    return user, password


def fingerprint(value: str) -> str:
    """Return the first 8 hex digits of the SHA-256 of ``value`` (UTF-8)."""
    # surrogatepass: a stored secret is any str, and this must never raise.
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def describe_ref(ref: str, env: Mapping[str, str] | None = None) -> str:
    """Return ``set, fingerprint …`` for a literal, ``env:NAME (set, fingerprint …)`` or
    ``env:NAME (not set)`` for a reference; never the secret."""
    if ref.startswith("env:"):
        value = resolve_secret(ref, env)
        return (
            f"{ref} (not set)"
            if value is None
            else f"{ref} (set, fingerprint {fingerprint(value)})"
        )
    return f"set, fingerprint {fingerprint(ref)}"


def describe(refs: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """Return ``none``, or ``N secret(s): `` and each reference as describe_ref gives it."""
    if not refs:
        return "none"
    described = "; ".join(describe_ref(str(ref), env) for ref in refs)
    return f"{len(refs)} secret{'' if len(refs) == 1 else 's'}: {described}"


def describe_basic_auth(ref: str, env: Mapping[str, str] | None = None) -> str:
    """Return ``user ci, password set, fingerprint …`` (the password as describe_ref
    gives it) or, for ``env:NAME``, describe_ref of the whole reference; never the
    password."""
    user, colon, password = ref.partition(":")
    if ref.startswith("env:") or not (colon and user):
        return describe_ref(ref, env)
    return f"user {user}, password {describe_ref(password, env)}"


def decode_whsec(secret: str) -> bytes | None:
    """Return the key bytes of a Standard Webhooks ``whsec_<base64>`` secret, or None."""
    encoded = secret.removeprefix("whsec_")
    # The reference libraries pad the secret themselves, so senders may hand it out bare.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return None
    return key or None


def redact_url(url: str) -> str:
    """``url`` with the password of its user info, if any, shown as ``***`` (the API's
    and the console's destination URLs)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
