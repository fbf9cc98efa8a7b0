"""``max_body_bytes`` against a real server: an oversized upload gets its 413 after the
first few KB, without Hookway reading (or the sender sending) the rest."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from hookway.models import Event

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LIMIT = 1024
DECLARED = 50 * 1024 * 1024
SENT = 4 * 1024


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read one HTTP/1.1 response (Content-Length or chunked body); fail on timeout."""
    data = b""

    def more() -> None:
        nonlocal data
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed mid-response: {data!r}")
        data += chunk

    while b"\r\n\r\n" not in data:
        more()
    head, _, data = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        length = int(headers["content-length"])
        while len(data) < length:
            more()
        return int(status_line.split()[1]), headers, data[:length]
    assert headers.get("transfer-encoding") == "chunked", headers
    body = b""
    while True:
        while b"\r\n" not in data:
            more()
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        while len(data) < size + 2:
            more()
        if size == 0:
            return int(status_line.split()[1]), headers, body
        body += data[:size]
        data = data[size + 2 :]


def open_upload(url: str, framing: str) -> socket.socket:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(
        (
            "POST /hooks/small HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n"
            "Content-Type: application/json\r\n"
            f"{framing}\r\n"
            "\r\n"
        ).encode()
    )
    return sock


def assert_413(status: int, headers: dict[str, str], body: bytes) -> None:
    assert status == 413, body
    assert headers["content-type"] == "application/json"
    # The rest of the upload is never read: the connection can't carry another request.
    assert headers["connection"] == "close"
    payload = json.loads(body)
    assert payload["error"]
    assert str(LIMIT) in payload["detail"]


@pytest.fixture
def server(start_server: Callable[..., Any], make_source: Callable[..., Any]) -> Any:
    make_source(slug="small", max_body_bytes=LIMIT)
    return start_server({"HOOKWAY_EMBEDDED_DISPATCHER": "false"})


def test_declared_50_mb_body_gets_413_after_a_few_kb(server: Any) -> None:
    with open_upload(server.url, f"Content-Length: {DECLARED}") as sock:
        # The first few KB of a JSON document; the other ~50 MB are never sent. If
        # Hookway waited for the whole body, this read would time out instead.
        sock.sendall(b'{"type": "push", "pad": "' + b"x" * (SENT - 25))
        assert_413(*read_response(sock))
    assert Event.objects.count() == 0


def test_chunked_upload_past_the_limit_gets_413_before_it_ends(server: Any) -> None:
    with open_upload(server.url, "Transfer-Encoding: chunked") as sock:
        chunk = b'{"pad": "' + b"x" * 503
        for _ in range(SENT // len(chunk)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        # No terminating zero-size chunk: the upload is still "in progress".
        assert_413(*read_response(sock))
    assert Event.objects.count() == 0


def test_body_of_exactly_the_limit_is_accepted_and_one_byte_more_is_not(server: Any) -> None:
    head = b'{"type": "push", "pad": "'
    exact = head + b"x" * (LIMIT - len(head) - 2) + b'"}'
    assert len(exact) == LIMIT
    over = exact[:-2] + b'x"}'
    headers = {"Content-Type": "application/json"}

    accepted = httpx.post(server.url + "/hooks/small", content=exact, headers=headers)
    assert accepted.status_code == 202, accepted.text
    rejected = httpx.post(server.url + "/hooks/small", content=over, headers=headers)
    assert rejected.status_code == 413, rejected.text
    assert Event.objects.count() == 1


def test_chunked_body_within_the_limit_is_accepted(server: Any) -> None:
    def chunks() -> Any:
        yield b'{"type": "push", '
        yield b'"pad": "' + b"x" * 500 + b'"}'

    # A generator body makes httpx send Transfer-Encoding: chunked, no Content-Length.
    response = httpx.post(
        server.url + "/hooks/small",
        content=chunks(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 202, response.text
    assert "content-length" not in response.request.headers
    assert Event.objects.count() == 1
