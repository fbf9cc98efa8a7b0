"""hookway.send.sender.send: the outbound request and how its outcome is classified.

Most tests drive send() through make_client() with an httpx.MockTransport; the last two
reach a real HTTP server on 127.0.0.1 with the default transport.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import gzip
import ipaddress
import json
import ssl
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import trustme
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from hookway import __version__
from hookway.send.client import AiohttpClient, HttpxClient, make_client
from hookway.send.guard import Guard
from hookway.send.sender import RESPONSE_BODY_LIMIT, AttemptResult, OutboundDelivery, send

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Not valid UTF-8 on purpose: the body must be forwarded as bytes, never decoded.
BINARY_BODY = b"\xff\xfe\x00raw \x80\x81 bytes\r\n\xc3\x28"
# Odd whitespace and key order a re-serialisation would lose.
JSON_BODY = b'{ "b" :1,\n\t"a":[ 1 ,2 ] ,"text":"caf\xc3\xa9"  }\n'

Handler = Callable[[httpx.Request], httpx.Response]


def make_delivery(**overrides: object) -> OutboundDelivery:
    fields: dict[str, object] = {
        "delivery_id": "dlv_2f1c9a",
        "attempt": 1,
        "event_id": "evt_81bd",
        "event_name": "push",
        "source_slug": "gitlab",
        "destination_id": 7,
        "destination_name": "ci-bot",
        "url": "http://127.0.0.1:8080/hooks?x=1",
        "signing_secret": None,
        "timeout": 5.0,
        "max_attempts": 10,
        "body": JSON_BODY,
        "content_type": "application/json",
    }
    fields.update(overrides)
    return OutboundDelivery(**fields)  # type: ignore[arg-type]


class Receiver:
    """A MockTransport handler that records every request and answers with ``respond``."""

    def __init__(self, respond: Handler | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.respond = respond or (lambda request: httpx.Response(200))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.respond(request)

    @property
    def last(self) -> httpx.Request:
        assert self.requests, "the receiver got no request"
        return self.requests[-1]


async def deliver(
    receiver: Receiver, delivery: OutboundDelivery, guard: Guard | None = None
) -> AttemptResult:
    async with make_client(transport=httpx.MockTransport(receiver)) as client:
        return await send(client, guard or Guard(allow_private=True), delivery)


def answer(status: int, **kw: object) -> Receiver:
    return Receiver(lambda request: httpx.Response(status, **kw))  # type: ignore[arg-type]


# -- the request ------------------------------------------------------------------------


async def test_request_is_a_post_to_the_destination_path_and_query():
    receiver = Receiver()
    await deliver(receiver, make_delivery())
    assert receiver.last.method == "POST"
    assert receiver.last.url.path == "/hooks"
    assert receiver.last.url.query == b"x=1"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (BINARY_BODY, "application/octet-stream"),
        (JSON_BODY, "application/json; charset=utf-8"),
        (b"a=1&b=%C3%A9", "application/x-www-form-urlencoded"),
    ],
)
async def test_body_is_forwarded_byte_for_byte_with_its_content_type(body, content_type):
    receiver = Receiver()
    await deliver(receiver, make_delivery(body=body, content_type=content_type))
    assert receiver.last.content == body
    assert receiver.last.headers["Content-Type"] == content_type
    assert receiver.last.headers["Content-Length"] == str(len(body))


async def test_hookway_headers_describe_the_event_source_and_attempt():
    receiver = Receiver()
    await deliver(receiver, make_delivery(event_name="merge_request", attempt=3))
    headers = receiver.last.headers
    assert headers["X-Hookway-Event"] == "merge_request"
    assert headers["X-Hookway-Source"] == "gitlab"
    assert headers["X-Hookway-Attempt"] == "3"
    assert headers["User-Agent"] == f"Hookway/{__version__}"


async def test_webhook_id_is_the_delivery_id_and_stays_the_same_across_attempts():
    receiver = Receiver()
    first = make_delivery(attempt=1)
    await deliver(receiver, first)
    await deliver(receiver, dataclasses.replace(first, attempt=2))
    ids = [r.headers["webhook-id"] for r in receiver.requests]
    attempts = [r.headers["X-Hookway-Attempt"] for r in receiver.requests]
    assert ids == [first.delivery_id, first.delivery_id]
    assert attempts == ["1", "2"]


async def test_webhook_timestamp_is_the_current_time_in_whole_seconds():
    receiver = Receiver()
    before = int(time.time())
    await deliver(receiver, make_delivery())
    after = time.time()
    stamp = receiver.last.headers["webhook-timestamp"]
    assert stamp.isdigit()
    assert before <= int(stamp) <= after


async def test_no_signature_header_without_a_signing_secret():
    receiver = Receiver()
    await deliver(receiver, make_delivery(signing_secret=None))
    assert "webhook-signature" not in receiver.last.headers


async def test_signature_verifies_with_the_standardwebhooks_library():
    receiver = Receiver()
    await deliver(receiver, make_delivery(signing_secret=SECRET))
    request = receiver.last
    headers = dict(request.headers)
    assert headers["webhook-signature"].startswith("v1,")
    # The reference library is the oracle: it parses the body it verifies.
    assert Webhook(SECRET).verify(request.content, headers) == json.loads(JSON_BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(request.content + b" ", headers)


async def test_host_header_keeps_the_original_host_and_port_while_the_url_is_pinned_to_its_ip():
    receiver = Receiver()
    await deliver(receiver, make_delivery(url="http://localhost:8080/hooks"))
    assert receiver.last.url.host == "127.0.0.1"
    assert receiver.last.url.port == 8080
    assert receiver.last.headers.get_list("Host") == ["localhost:8080"]


async def test_public_literal_ip_passes_the_default_guard_without_dns():
    receiver = Receiver()
    result = await deliver(receiver, make_delivery(url="http://93.184.215.14/in"), Guard())
    assert result.outcome == "success"
    assert receiver.last.url.host == "93.184.215.14"
    assert receiver.last.headers["Host"] == "93.184.215.14"


async def test_credentials_in_the_url_become_basic_auth_and_stay_out_of_the_host_header():
    receiver = Receiver()
    await deliver(receiver, make_delivery(url="http://bot:s3cret@localhost:8080/hooks"))
    expected = "Basic " + base64.b64encode(b"bot:s3cret").decode()
    assert receiver.last.headers["Authorization"] == expected
    assert receiver.last.headers["Host"] == "localhost:8080"


# -- a destination's extra headers --------------------------------------------------------


async def test_static_headers_and_forwarded_headers_are_sent():
    receiver = Receiver()
    await deliver(
        receiver,
        make_delivery(
            headers=(("X-Team", "ops"),),
            forwarded_headers=(("X-Gitlab-Event", "Push Hook"),),
        ),
    )
    assert receiver.last.headers["X-Team"] == "ops"
    assert receiver.last.headers["X-Gitlab-Event"] == "Push Hook"


async def test_a_bearer_token_is_sent_as_authorization():
    receiver = Receiver()
    await deliver(receiver, make_delivery(bearer_token="tok-123"))
    assert receiver.last.headers["Authorization"] == "Bearer tok-123"


async def test_basic_auth_is_sent_as_utf8_base64():
    receiver = Receiver()
    await deliver(receiver, make_delivery(basic_auth=("ci", "pässword:with:colons")))
    expected = base64.b64encode("ci:pässword:with:colons".encode()).decode()
    assert receiver.last.headers["Authorization"] == f"Basic {expected}"


async def test_precedence_is_forwarded_then_static_then_auth_then_hookways_own():
    receiver = Receiver()
    await deliver(
        receiver,
        make_delivery(
            event_name="push",
            forwarded_headers=(
                ("X-Team", "from-sender"),
                ("X-Only-Forwarded", "kept"),
                ("x-hookway-event", "forged"),
            ),
            headers=(("x-team", "from-config"), ("Authorization", "Token static")),
            bearer_token="tok-123",
        ),
    )
    headers = receiver.last.headers
    assert headers.get_list("X-Team") == ["from-config"]
    assert headers["X-Only-Forwarded"] == "kept"
    assert headers.get_list("Authorization") == ["Bearer tok-123"]
    assert headers.get_list("X-Hookway-Event") == ["push"]


@pytest.mark.parametrize(
    "name",
    [
        "webhook-id",
        "Webhook-Timestamp",
        "webhook-signature",
        "X-Hookway-Attempt",
        "Content-Type",
        "Content-Length",
        "Host",
        "User-Agent",
        "Transfer-Encoding",
        "Connection",
    ],
)
async def test_reserved_and_hop_by_hop_names_never_replace_hookways_headers(name):
    # The config file and the admin refuse them; a row edited by hand can't slip them in.
    receiver = Receiver()
    delivery = make_delivery(
        attempt=2,
        signing_secret=SECRET,
        headers=((name, "from-config"),),
        forwarded_headers=((name, "from-sender"),),
    )
    result = await deliver(receiver, delivery)
    assert result.outcome == "success"
    values = receiver.last.headers.get_list(name)
    assert "from-config" not in values
    assert "from-sender" not in values
    assert Webhook(SECRET).verify(receiver.last.content, dict(receiver.last.headers))


async def test_explicit_auth_replaces_credentials_in_the_url():
    receiver = Receiver()
    await deliver(
        receiver,
        make_delivery(url="http://bot:s3cret@localhost:8080/hooks", bearer_token="tok-123"),
    )
    assert receiver.last.headers.get_list("Authorization") == ["Bearer tok-123"]


async def test_a_delivery_with_a_problem_fails_for_good_without_sending():
    receiver = Receiver()
    result = await deliver(
        receiver,
        make_delivery(problem="bearer_token: environment variable CI_TOKEN is not set or empty"),
    )
    assert result.outcome == "failed"
    assert result.error_kind == "invalid_destination"
    assert result.error == (
        "not sent: bearer_token: environment variable CI_TOKEN is not set or empty"
    )
    assert receiver.requests == []


def test_secrets_stay_out_of_the_deliverys_repr():
    delivery = make_delivery(
        signing_secret=SECRET,
        headers=(("X-Api-Key", "key-value-1"),),
        bearer_token="bearer-value-2",
        basic_auth=("ci", "password-value-3"),
    )
    for secret in (SECRET, "key-value-1", "bearer-value-2", "password-value-3"):
        assert secret not in repr(delivery)


async def test_an_internationalised_host_is_sent_as_punycode():
    class FixedGuard(Guard):
        async def resolve(self, host: str, port: int):  # no DNS in unit tests
            assert host == "bücher.example"
            return ipaddress.ip_address("93.184.215.14")

    receiver = Receiver()
    await deliver(receiver, make_delivery(url="http://bücher.example:8080/in"), FixedGuard())
    assert receiver.last.headers["Host"] == "xn--bcher-kva.example:8080"


async def test_the_client_asks_for_uncompressed_replies():
    receiver = Receiver()
    await deliver(receiver, make_delivery())
    assert receiver.last.headers["Accept-Encoding"] == "identity"


async def test_non_ascii_event_name_is_sent_as_utf8():
    receiver = Receiver()
    result = await deliver(receiver, make_delivery(event_name="commande.créée"))
    assert result.outcome == "success"
    assert dict(receiver.last.headers.raw)[b"X-Hookway-Event"] == "commande.créée".encode()


# -- outcome ----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204])
async def test_2xx_is_success(status):
    result = await deliver(answer(status), make_delivery())
    assert result.outcome == "success"
    assert result.status_code == status
    assert result.error == ""
    assert result.delivery_id == "dlv_2f1c9a"
    assert result.attempt == 1
    assert result.destination_id == 7
    assert result.duration_ms >= 0


async def test_410_fails_for_good_and_disables_the_destination():
    result = await deliver(answer(410, text="gone"), make_delivery())
    assert result.outcome == "failed"
    assert result.disable_destination is True
    assert result.status_code == 410
    assert result.response_body == "gone"


@pytest.mark.parametrize("status", [301, 302, 307])
async def test_redirect_is_not_followed_and_is_retried(status):
    receiver = answer(status, headers={"Location": "http://127.0.0.1:8080/elsewhere"})
    result = await deliver(receiver, make_delivery())
    assert len(receiver.requests) == 1
    assert result.outcome == "retry"
    assert result.status_code == status
    assert "redirects are not followed" in result.error
    assert result.disable_destination is False


@pytest.mark.parametrize("status", [400, 404, 500])
async def test_other_error_statuses_are_retried(status):
    result = await deliver(answer(status, text="nope"), make_delivery())
    assert result.outcome == "retry"
    assert result.status_code == status
    assert str(status) in result.error
    assert result.response_body == "nope"
    assert result.retry_after is None
    assert result.disable_destination is False


@pytest.mark.parametrize("status", [429, 502, 503, 504])
async def test_retry_after_seconds_is_parsed_for_back_off_statuses(status):
    result = await deliver(answer(status, headers={"Retry-After": "120"}), make_delivery())
    assert result.outcome == "retry"
    assert result.retry_after == 120.0


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_http_date_becomes_seconds_until_then(status):
    when = datetime.now(UTC) + timedelta(seconds=120)
    receiver = answer(status, headers={"Retry-After": format_datetime(when, usegmt=True)})
    result = await deliver(receiver, make_delivery())
    assert result.outcome == "retry"
    assert result.retry_after is not None
    # The date has whole-second precision and a little time passes while sending.
    assert 115 <= result.retry_after <= 120


async def test_retry_after_is_ignored_on_a_plain_500():
    result = await deliver(answer(500, headers={"Retry-After": "120"}), make_delivery())
    assert result.outcome == "retry"
    assert result.retry_after is None


@pytest.mark.parametrize(
    ("exc", "words"),
    [
        (httpx.ConnectError("connection refused"), ["ConnectError", "connection refused"]),
        (httpx.ReadTimeout("read timed out"), ["timed out", "ReadTimeout"]),
    ],
)
async def test_transport_errors_are_retried_with_a_clear_error(exc, words):
    def fail(request: httpx.Request) -> httpx.Response:
        raise exc

    result = await deliver(Receiver(fail), make_delivery())
    assert result.outcome == "retry"
    assert result.status_code is None
    for word in words:
        assert word in result.error


async def test_response_body_is_capped_at_20_kb():
    body = b"0123456789abcdef" * 6400  # 100 KiB
    result = await deliver(answer(500, content=body), make_delivery())
    assert RESPONSE_BODY_LIMIT == 20 * 1024
    assert len(result.response_body) <= 20480
    assert body.decode().startswith(result.response_body)
    assert len(result.response_body) > 20000


async def test_nul_bytes_in_the_response_body_do_not_survive():
    result = await deliver(answer(500, content=b"error\x00detail\x00"), make_delivery())
    assert "\x00" not in result.response_body
    assert result.response_body.startswith("error")
    assert "detail" in result.response_body


async def test_a_compressed_response_body_is_stored_decoded():
    body = b"<h1>Internal error</h1>"
    receiver = answer(500, content=gzip.compress(body), headers={"Content-Encoding": "gzip"})
    result = await deliver(receiver, make_delivery())
    assert result.response_body == body.decode()


async def test_an_undecodable_response_body_does_not_change_the_outcome():
    receiver = answer(
        200, stream=httpx.ByteStream(b"not gzip"), headers={"Content-Encoding": "gzip"}
    )
    result = await deliver(receiver, make_delivery())
    assert result.outcome == "success"
    assert "undecodable" in result.response_body


@pytest.mark.parametrize(
    "url",
    ["ftp://127.0.0.1/hooks", "not a url", "http:///no-host", "http://127.0.0.1:99999/"],
)
async def test_a_url_that_is_not_http_fails_without_raising_or_sending(url):
    receiver = Receiver()
    result = await deliver(receiver, make_delivery(url=url))
    assert result.outcome == "failed"
    assert "can't send to" in result.error
    assert receiver.requests == []


async def test_a_private_address_is_refused_by_the_default_guard_without_sending():
    receiver = Receiver()
    result = await deliver(receiver, make_delivery(), Guard())
    assert result.outcome == "failed"
    assert "refused" in result.error
    assert receiver.requests == []


# -- a real local HTTP server -----------------------------------------------------------


class LocalServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers every request with 200 "ok"."""

    def __init__(self, extra_headers: bytes = b"") -> None:
        self.extra_headers = extra_headers
        self.received: list[bytes] = []
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            self.received.append(head + await reader.readexactly(length))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n"
                + self.extra_headers
                + b"\r\nok"
            )
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def __aenter__(self) -> LocalServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()


async def test_real_local_server_is_reached_when_private_addresses_are_allowed():
    async with LocalServer() as server, make_client() as client:
        delivery = make_delivery(url=f"http://127.0.0.1:{server.port}/in", body=BINARY_BODY)
        result = await send(client, Guard(allow_private=True), delivery)
    assert result.outcome == "success"
    assert result.status_code == 200
    assert result.response_body == "ok"
    assert len(server.received) == 1
    assert server.received[0].startswith(b"POST /in HTTP/1.1\r\n")
    assert server.received[0].endswith(b"\r\n\r\n" + BINARY_BODY)


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_a_cookie_set_by_a_receiver_is_neither_kept_nor_sent_again(kind):
    cookie = b"Set-Cookie: session=s3cr3t; Path=/\r\n"
    async with LocalServer(cookie) as server, make_client(kind=kind) as client:
        url = f"http://127.0.0.1:{server.port}/in"
        for _ in range(2):
            result = await send(client, Guard(allow_private=True), make_delivery(url=url))
            assert result.outcome == "success"
        if isinstance(client, HttpxClient):
            assert len(client.http.cookies) == 0
        else:
            assert isinstance(client, AiohttpClient)
            assert client._session is not None
            assert len(client._session.cookie_jar) == 0
    assert len(server.received) == 2
    assert b"cookie" not in server.received[1].split(b"\r\n\r\n")[0].lower()


async def test_real_local_server_is_never_contacted_when_private_addresses_are_refused():
    async with LocalServer() as server, make_client() as client:
        delivery = make_delivery(url=f"http://127.0.0.1:{server.port}/in")
        result = await send(client, Guard(), delivery)
    assert result.outcome == "failed"
    assert "refused" in result.error
    assert "127.0.0.1" in result.error
    assert "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS" in result.error
    assert server.connections == 0
    assert server.received == []


# --- every failure classified by its cause, with both transports, against real sockets -----


class _ClosingServer:
    """Accepts a connection, reads the request, then closes (or resets) it unanswered."""

    def __init__(self, reset: bool = False, answer: bytes = b"") -> None:
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.reset = reset
        self.answer = answer

        def serve() -> None:
            import struct

            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                conn.recv(65536)
                if self.answer:
                    conn.sendall(self.answer)
                if self.reset:  # RST instead of FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()

        threading.Thread(target=serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])


def _unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
@pytest.mark.parametrize(
    ("case", "error_kind", "words"),
    [
        ("refused", "connection_refused", "connection refused"),
        ("closed", "connection_reset", "connection"),
        ("reset", "connection_reset", "connection"),
        ("tls", "tls", "TLS"),
        ("dns", "dns", "can't resolve"),
    ],
)
async def test_network_failures_are_classified_by_their_cause(kind, case, error_kind, words):
    server = None
    if case == "refused":
        url = f"http://127.0.0.1:{_unused_port()}/hook"
    elif case in ("closed", "reset"):
        server = _ClosingServer(reset=case == "reset")
        url = f"http://127.0.0.1:{server.port}/hook"
    elif case == "tls":
        # Plain HTTP where TLS was expected: the handshake fails on what comes back.
        server = _ClosingServer(answer=b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        url = f"https://127.0.0.1:{server.port}/hook"
    else:
        url = "http://no-such-host.invalid/hook"
    started = time.perf_counter()
    async with make_client(kind=kind) as client:
        result = await send(client, Guard(allow_private=True), make_delivery(url=url, timeout=5))
    assert result.outcome == "retry"
    assert result.error_kind == error_kind, result.error
    assert words in result.error
    assert time.perf_counter() - started < 5, "classified at once, not after the timeout"
    if server is not None:
        server.sock.close()


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_an_answer_that_is_not_http_is_a_classified_failure(kind):
    server = _ClosingServer(answer=b"garbage\r\n\r\n")
    url = f"http://127.0.0.1:{server.port}/hook"
    async with make_client(kind=kind) as client:
        result = await send(client, Guard(allow_private=True), make_delivery(url=url, timeout=5))
    server.sock.close()
    assert result.outcome == "retry"
    assert result.error_kind == "connection_reset", result.error
    assert "garbage" in result.error
    assert "\n" not in result.error


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_a_body_that_does_not_decode_keeps_the_receivers_status(kind):
    server = _ClosingServer(
        answer=b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde"
    )
    url = f"http://127.0.0.1:{server.port}/hook"
    async with make_client(kind=kind) as client:
        result = await send(client, Guard(allow_private=True), make_delivery(url=url, timeout=5))
    server.sock.close()
    assert result.outcome == "success"
    assert result.status_code == 200
    assert result.response_body.startswith("(undecodable response body: ")


class _TlsServer:
    """A TLS server for ``localhost`` (a trustme CA's certificate) that records the SNI
    name each handshake asked for and answers 200."""

    def __init__(self, ca: Any) -> None:
        self.sni: list[str | None] = []
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("localhost").configure_cert(self.context)
        self.context.sni_callback = lambda sock, name, ctx: self.sni.append(name)
        self.requests = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # a client that refused our certificate hangs up
        finally:
            writer.close()

    async def __aenter__(self) -> _TlsServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.context)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._server.close()
        await self._server.wait_closed()


def _client_trusting(kind: str, ca: Any) -> Any:
    """make_client(kind=…) whose TLS trusts ``ca`` (as a private CA in the system store)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if kind == "httpx":
        return HttpxClient(httpx.AsyncHTTPTransport(verify=context))
    client = make_client(kind="aiohttp")
    assert isinstance(client, AiohttpClient)
    client._ssl = context
    return client


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_https_goes_to_the_pinned_address_with_the_name_for_sni_and_verification(kind):
    ca = trustme.CA()
    async with _TlsServer(ca) as server, _client_trusting(kind, ca) as client:
        url = f"https://localhost:{server.port}/hook"
        result = await send(client, Guard(allow_private=True), make_delivery(url=url))
    assert result.outcome == "success", result.error
    assert server.sni == ["localhost"]
    assert server.requests == 1


@pytest.mark.parametrize("kind", ["aiohttp", "httpx"])
async def test_https_to_a_certificate_nobody_vouches_for_is_a_tls_failure(kind):
    async with _TlsServer(trustme.CA()) as server, make_client(kind=kind) as client:
        url = f"https://localhost:{server.port}/hook"
        result = await send(client, Guard(allow_private=True), make_delivery(url=url))
    assert result.outcome == "retry"
    assert result.error_kind == "tls", result.error
    assert "certificate" in result.error.lower()
    assert server.sni == ["localhost"]
    assert server.requests == 0
