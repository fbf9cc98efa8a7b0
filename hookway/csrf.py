"""The answer to an admin form Django's CSRF check refused (CSRF_FAILURE_VIEW).

Django's own page gives the reason only when DEBUG is on, and logs it only then too, so
an operator whose login fails behind a TLS proxy sees "CSRF verification failed" and
nothing else. This page and its log line say why, what Hookway saw, and which setting
fixes it (docs/operations.md, "Behind a TLS proxy"). Nothing in them is secret: the
Origin and Host come from the request itself.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseForbidden
from django.utils.html import format_html

logger = logging.getLogger("hookway.csrf")

DOCS = "docs/operations.md, “Behind a TLS proxy”"


def _seen(request: HttpRequest) -> tuple[str, str]:
    """The scheme and host Hookway took this request for."""
    try:
        host = request.get_host()
    except DisallowedHost:  # CommonMiddleware refuses these before CSRF runs
        host = ""
    return request.scheme or "http", host


def _origin_hint(claimed: str, scheme: str, host: str) -> str:
    parts = urlsplit(claimed)
    trust = f"add {claimed} to CSRF_TRUSTED_ORIGINS"
    if parts.netloc == host and parts.scheme == "https" and scheme == "http":
        return (
            "Hookway saw this request as plain http: the TLS proxy in front of it says https "
            "in X-Forwarded-Proto, which Hookway did not trust. Set FORWARDED_ALLOW_IPS to "
            "the proxy's addresses, or "
            "HOOKWAY_TRUST_X_FORWARDED_PROTO=true if nothing but the proxy can reach "
            f"Hookway, or {trust}."
        )
    if parts.netloc != host:
        return (
            f"The request reached Hookway with Host {host or '(refused)'}, not the "
            f"browser's {parts.netloc}: make the proxy pass the original Host "
            f"(nginx: proxy_set_header Host $host), or {trust}."
        )
    return f"If this is Hookway's own address, {trust}."


def explain(reason: str, request: HttpRequest) -> str:
    """What to do about a CSRF refusal for ``reason`` (Django's words)."""
    scheme, host = _seen(request)
    if reason.startswith(("Origin checking failed", "Referer checking failed - http")):
        header = "HTTP_ORIGIN" if reason.startswith("Origin") else "HTTP_REFERER"
        parts = urlsplit(request.META.get(header, ""))
        return _origin_hint(f"{parts.scheme}://{parts.netloc}", scheme, host)
    if reason.startswith("Referer checking failed"):
        return (
            "Browsers send a Referer with a form over https; one without, or with an "
            "http Referer, is refused. Reload the login page over https and try again."
        )
    if reason == "CSRF cookie not set.":
        return (
            "The browser sent no CSRF cookie. With HOOKWAY_SECURE_COOKIES=true it sends "
            "cookies only over https: reach the admin over https (or turn that off where "
            "there is no TLS), and check that the browser accepts cookies from this site."
        )
    return "Reload the page and submit the form again."


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponseForbidden:
    """403 with Django's reason, what Hookway saw and the hint; logged as a warning."""
    scheme, host = _seen(request)
    hint = explain(reason, request)
    seen = f"{scheme}://{host}"
    logger.warning(
        json.dumps(
            {
                "event": "csrf_refused",
                "path": request.path,
                "reason": reason,
                "origin": request.META.get("HTTP_ORIGIN", ""),
                "seen_as": seen,
                "hint": hint,
            }
        )
    )
    page = format_html(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='robots' content='noindex'><title>403 Forbidden: CSRF check failed"
        "</title></head><body><h1>Forbidden (403): CSRF check failed</h1>"
        "<p><strong>{}</strong></p><p>Hookway saw this request as {}.</p><p>{}</p>"
        "<p>See {} in Hookway's documentation.</p></body></html>",
        reason,
        seen,
        hint,
        DOCS,
    )
    return HttpResponseForbidden(page, content_type="text/html; charset=utf-8")
