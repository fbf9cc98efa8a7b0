"""The one place the dispatcher's HTTP client is built, so tests can inject a transport
(httpx.MockTransport) and the benchmarks can compare transports.

Two clients sit behind one small interface (``Client.post``: one request, the reply's
status, headers and first bytes of body), chosen with HOOKWAY_HTTP_TRANSPORT:

- ``aiohttp`` (the default) sends through an aiohttp session directly. It used to go
  through httpx's API over aiohttp (httpx-aiohttp); that wrapper (request building,
  header merging, the auth/redirect/cookie steps Hookway turns off anyway) cost more
  than aiohttp itself, on the event loop that also serves ingest: ~350 us of CPU per
  delivery through it, ~200 us direct (~110 us of which is aiohttp's own); the
  dispatcher's loop lag p99 at 200 in flight went 49 -> 14 ms
  (bench/results/http_client.md).
- ``httpx`` sends through httpx's own transport (httpcore). Its pool checks every pooled
  connection for every request it places (encode/httpx#3215), so its cost per request
  grows with the connections in use: measured on this dispatcher at 200 in flight it
  delivered ~35x fewer webhooks per second than aiohttp and starved the event loop.
  Tests inject an httpx transport through it (``make_client(transport=...)``).

Both: no redirects followed (a 3xx is a failure), no cookies kept between receivers (a
webhook sender keeps no session; a cookie stored from one receiver would go on to
another destination on the same pinned address), ``Accept-Encoding: identity``, the
response body decoded and capped at RESPONSE_BODY_LIMIT.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, Self

import httpx

from hookway import __version__, conf
from hookway.conf import HTTP_TRANSPORTS, HttpTransport
from hookway.send.errors import classify

if TYPE_CHECKING:
    import aiohttp

USER_AGENT = f"Hookway/{__version__}"
RESPONSE_BODY_LIMIT = 20 * 1024
# identity: a compressed reply could inflate far past the 20 KB Hookway keeps.
DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
KEEPALIVE_SECONDS = 30


class Phase:
    """Where an attempt is, for the message when it fails or its deadline passes."""

    def __init__(self) -> None:
        self.name = "resolving the host name"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body: bytes  # decoded, at most RESPONSE_BODY_LIMIT bytes


class Client(Protocol):
    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        phase: Phase,
        sni_hostname: str | None = None,
    ) -> Reply:
        """POST ``body`` to ``url`` and read the reply. Raises a DeliveryError
        (hookway.send.errors) for anything short of a complete status line and headers;
        a body that can't be decoded becomes a note in ``Reply.body``. No deadline of
        its own: the caller bounds the whole attempt."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Client: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


class _Closing:
    """``async with client:`` closes it at the end."""

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def _undecodable(why: object) -> bytes:
    return f"(undecodable response body: {why})".encode()


class HttpxClient(_Closing):
    """Requests through an httpx.AsyncClient (its own transport, or one a test injects)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.http = httpx.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            headers=DEFAULT_HEADERS,
        )
        # The client's jar, set directly: its ``cookies`` setter copies into a plain
        # Cookies. tests/unit/test_sender.py pins that no cookie is stored or sent back.
        self.http._cookies = _NoCookies()

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        phase: Phase,
        sni_hostname: str | None = None,
    ) -> Reply:
        request = self.http.build_request(
            "POST",
            url,
            content=body,
            # httpx encodes str header values as ASCII and raises on anything else;
            # event names may be any Unicode, so send UTF-8.
            headers={name.encode(): value.encode() for name, value in headers.items()},
            # No per-phase timeouts: the caller's deadline covers the whole attempt.
            timeout=httpx.Timeout(None),
            extensions={"sni_hostname": sni_hostname} if sni_hostname else {},
        )
        try:
            response = await self.http.send(request, stream=True)
        except (httpx.TransportError, OSError) as exc:
            raise classify(exc, phase.name) from None
        phase.name = "reading the response body"
        raw = bytearray()
        try:
            # Decoded (gzip, …) so the stored body is readable; the cap bounds memory.
            async for chunk in response.aiter_bytes():
                raw.extend(chunk)
                if len(raw) >= RESPONSE_BODY_LIMIT:
                    break
        except httpx.DecodingError as exc:
            # A bad Content-Encoding spoils the body, not the status the receiver sent.
            raw = bytearray(_undecodable(exc))
        except (httpx.TransportError, OSError) as exc:
            raise classify(exc, phase.name) from None
        finally:
            await response.aclose()
        return Reply(response.status_code, response.headers, bytes(raw[:RESPONSE_BODY_LIMIT]))

    async def aclose(self) -> None:
        await self.http.aclose()


class _NoCookies(httpx.Cookies):
    """A cookie jar that keeps nothing (httpx's client stores every Set-Cookie and sends
    it on). Not parsing them also saves urllib's cookie machinery on every response."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class AiohttpClient(_Closing):
    """Requests through one aiohttp session, made on first use (it needs the running
    event loop)."""

    def __init__(self, max_connections: int) -> None:
        # Imported here, when the dispatcher starts, not at the first send: importing
        # aiohttp takes ~0.2 s, which at the first send held the loop and made the
        # first rate-limited deliveries leave late and together. (The methods' own
        # imports then only look it up.)
        import aiohttp.http_exceptions  # noqa: F401

        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        # The certificates httpx trusts (certifi), so both clients verify alike.
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(trust_env=False)

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(
            limit=self.max_connections,
            keepalive_timeout=KEEPALIVE_SECONDS,
            ssl=self._ssl,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            headers=DEFAULT_HEADERS,
            # No timers per request: the caller's deadline covers the whole attempt.
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
        )
        return self._session

    async def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        phase: Phase,
        sni_hostname: str | None = None,
    ) -> Reply:
        import aiohttp

        session = self._session or self._open()
        extra: dict[str, Any] = {"server_hostname": sni_hostname} if sni_hostname else {}
        try:
            response = await session.post(
                url, data=body, headers=headers, allow_redirects=False, **extra
            )
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # ValueError: what aiohttp raises for a request it refuses to write (a
            # header value with a line break, an unparsable URL).
            raise classify(exc, phase.name) from None
        phase.name = "reading the response body"
        raw = bytearray()
        try:
            while len(raw) < RESPONSE_BODY_LIMIT:
                chunk = await response.content.read(RESPONSE_BODY_LIMIT - len(raw))
                if not chunk:
                    break
                raw.extend(chunk)
        except (aiohttp.ClientError, OSError) as exc:
            from aiohttp.http_exceptions import ContentEncodingError

            cause = exc.__cause__
            if isinstance(cause, ContentEncodingError):
                # A bad Content-Encoding spoils the body, not the status the receiver sent.
                raw = bytearray(_undecodable(cause.message))
            else:
                raise classify(exc, phase.name) from None
        finally:
            response.release()
        return Reply(response.status, response.headers, bytes(raw))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def make_client(
    *,
    max_connections: int = 200,
    transport: httpx.AsyncBaseTransport | None = None,
    kind: HttpTransport | None = None,
) -> Client:
    """Return the shared client, its connection pool sized for the dispatcher.

    ``transport`` (tests) wins over ``kind``; ``kind`` defaults to HOOKWAY_HTTP_TRANSPORT.
    """
    if transport is not None:
        return HttpxClient(transport)
    if kind is None:
        kind = conf.get().http_transport
    if kind == "aiohttp":
        return AiohttpClient(max_connections)
    if kind == "httpx":
        limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=KEEPALIVE_SECONDS,
        )
        return HttpxClient(httpx.AsyncHTTPTransport(limits=limits, trust_env=False))
    # Only code mypy does not check (tests) can pass another name: say which are valid.
    raise ValueError(
        f"unknown HTTP transport {kind!r}; expected one of {', '.join(HTTP_TRANSPORTS)}"
    )
