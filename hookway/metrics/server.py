"""A standalone dispatcher's own metrics endpoint (``manage.py dispatch`` with
HOOKWAY_DISPATCHER_METRICS_ADDRESS or ``--metrics-address``), for a dispatcher on a
machine without a Hookway web server to share PROMETHEUS_MULTIPROC_DIR with.

A minimal HTTP/1.1 server on the dispatcher's event loop: ``GET /metrics`` only, one
request per connection, the same access rules as the web server's (hookway.metrics.access).
It answers with this machine's Hookway counters and histograms, not the database's
gauges, which the web server's /metrics reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from hookway import gate
from hookway.metrics import access, registry
from hookway.metrics.exposition import CONTENT_TYPE

logger = logging.getLogger("hookway.metrics")

# A scrape's request is a line and a few headers: anything longer or slower is refused.
MAX_REQUEST_BYTES = 16 * 1024
READ_TIMEOUT = 5.0


async def start(host: str, port: int) -> asyncio.Server:
    """Listen on ``host:port``; raises OSError if the address can't be bound."""
    return await asyncio.start_server(_serve, host, port, limit=MAX_REQUEST_BYTES)


def _response(status: str, body: bytes, content_type: str, extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


def _error(status: str, code: str, detail: str, extra: str = "") -> bytes:
    body = json.dumps({"error": code, "detail": detail}).encode()
    return _response(status, body, "application/json", extra)


async def _answer(reader: asyncio.StreamReader, peer: str | None) -> bytes:
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
        return _error("400 Bad Request", "bad_request", "expected an HTTP/1.1 request")
    lines = head.decode("latin-1").split("\r\n")
    method, _, rest = lines[0].partition(" ")
    target = rest.partition(" ")[0]
    authorization = None
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "authorization":
            authorization = value.strip()
    problem = access.refusal(peer, authorization)
    if problem is not None:
        return _error("403 Forbidden", "forbidden", problem)
    if target.partition("?")[0] != "/metrics":
        return _error("404 Not Found", "not_found", "this endpoint serves /metrics only")
    if method not in ("GET", "HEAD"):
        return _error(
            "405 Method Not Allowed", "method_not_allowed", "use GET", "Allow: GET, HEAD\r\n"
        )
    registry.flush()
    body = await gate.arender_metrics(None, database=False)
    response = _response("200 OK", body, CONTENT_TYPE)
    return response[: response.index(b"\r\n\r\n") + 4] if method == "HEAD" else response


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peername = writer.get_extra_info("peername")
    peer = str(peername[0]) if isinstance(peername, tuple) and peername else None
    try:
        writer.write(await _answer(reader, peer))
        await writer.drain()
    except (ConnectionError, TimeoutError):
        pass  # the scraper went away
    except Exception:  # one scrape's bug must not end the server: logged with its traceback
        logger.exception("answering a metrics scrape failed")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, TimeoutError):
            await writer.wait_closed()
