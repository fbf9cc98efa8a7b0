"""The one place the dispatcher's HTTP client is built, so tests can inject a transport
(httpx.MockTransport) and the benchmarks can compare transports."""

from __future__ import annotations

import httpx

from hookway import __version__

USER_AGENT = f"Hookway/{__version__}"


def make_client(
    *, max_connections: int = 200, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Return the shared AsyncClient: no redirects followed (a 3xx is a failure), no
    cookies kept between receivers, connection pool sized for the dispatcher."""
    limits = httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=30,
    )
    return httpx.AsyncClient(
        transport=transport,
        limits=limits,
        follow_redirects=False,
        trust_env=False,
        # identity: a compressed reply could inflate far past the 20 KB Hookway keeps.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "identity"},
    )
