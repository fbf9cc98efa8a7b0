"""The one place the dispatcher's HTTP client is built, so tests can inject a transport
(httpx.MockTransport) and the benchmarks can compare transports.

Two transports sit behind the same httpx API: aiohttp's (via httpx-aiohttp, the
default) and httpx's own (httpcore), chosen with HOOKWAY_HTTP_TRANSPORT. httpcore's pool
checks every pooled connection for every request it places (encode/httpx#3215), so its
cost per request grows with the connections in use: measured on this dispatcher at 200
in flight it delivered ~35x fewer webhooks per second than aiohttp and starved the event
loop (bench/results/http_client.md).
"""

from __future__ import annotations

import httpx

from hookway import __version__, conf
from hookway.conf import HTTP_TRANSPORTS, HttpTransport

USER_AGENT = f"Hookway/{__version__}"


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing. httpx's client stores every Set-Cookie it is
    answered and sends it on with later requests to the same host (here, the same
    pinned address: another destination on it too); a webhook sender keeps no session.
    Not parsing them also saves ~6 % of the event loop's time per delivery
    (urllib's cookie machinery runs for every response)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


def make_transport(kind: HttpTransport, limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """Return a transport of ``kind`` ("httpx" or "aiohttp") with these pool limits."""
    if kind == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return AiohttpTransport(limits=limits, trust_env=False)
    if kind == "httpx":
        return httpx.AsyncHTTPTransport(limits=limits, trust_env=False)
    # Only code mypy does not check (tests) can pass another name: say which are valid.
    raise ValueError(
        f"unknown HTTP transport {kind!r}; expected one of {', '.join(HTTP_TRANSPORTS)}"
    )


def make_client(
    *,
    max_connections: int = 200,
    transport: httpx.AsyncBaseTransport | None = None,
    kind: HttpTransport | None = None,
) -> httpx.AsyncClient:
    """Return the shared AsyncClient: no redirects followed (a 3xx is a failure), no
    cookies kept between receivers, connection pool sized for the dispatcher.

    ``transport`` (tests) wins over ``kind``; ``kind`` defaults to HOOKWAY_HTTP_TRANSPORT.
    """
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30,
    )
    if transport is None:
        if kind is None:
            kind = conf.get().http_transport
        transport = make_transport(kind, limits)
    client = httpx.AsyncClient(
        transport=transport,
        follow_redirects=False,
        trust_env=False,
        # identity: a compressed reply could inflate far past the 20 KB Hookway keeps.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )
    # The client's jar, set directly: its ``cookies`` setter copies into a plain Cookies.
    # tests/unit/test_sender.py pins that no cookie is stored or sent back.
    client._cookies = _NoCookies()
    return client
