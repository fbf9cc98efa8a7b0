"""The problem Hookway exists for, as a test: a sender that gives up after 1 s posts
webhooks whose consumer takes seconds to answer, and still gets a 202 for each, well
within its timeout, because the event is stored and delivered later, not inline."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from hookway.models import Delivery, Destination, Event, Route

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "sender-timeout-secret"
SENDER_TIMEOUT = 1.0
CONSUMER_DELAY = 3.0  # three times the sender's patience


class SlowConsumer:
    """A destination that does 'heavy I/O': it answers each delivery after a delay."""

    def __init__(self, delay: float):
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        consumer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay)
                with consumer._lock:
                    consumer.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def received(self) -> list[bytes]:
        with self._lock:
            return list(self.bodies)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def slow_consumer() -> Iterator[SlowConsumer]:
    consumer = SlowConsumer(CONSUMER_DELAY)
    yield consumer
    consumer.close()


@pytest.fixture
def github_source(make_source: Callable[..., Any], slow_consumer: SlowConsumer) -> Any:
    source = make_source(slug="github", verify="github", secrets=[SECRET], require_event_name=True)
    destination = Destination.objects.create(name="slow", url=slow_consumer.url)
    Route.objects.create(source=source, destination=destination)
    return source


def send_webhook(client: httpx.Client, url: str, number: int) -> tuple[httpx.Response, bytes]:
    """POST one signed GitHub-style webhook the way a real sender would."""
    body = json.dumps({"ref": "refs/heads/main", "number": number}).encode()
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    response = client.post(
        url + "/hooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": f"delivery-{number}",
            "X-Hub-Signature-256": signature,
        },
    )
    return response, body


def send_all(url: str, numbers: range, concurrently: bool) -> list[tuple[httpx.Response, bytes]]:
    """Send the webhooks with a 1 s timeout; a timeout raises httpx.TimeoutException."""
    if not concurrently:
        with httpx.Client(timeout=SENDER_TIMEOUT) as client:
            return [send_webhook(client, url, n) for n in numbers]

    def one(number: int) -> tuple[httpx.Response, bytes]:
        with httpx.Client(timeout=SENDER_TIMEOUT) as client:
            return send_webhook(client, url, number)

    with ThreadPoolExecutor(max_workers=len(numbers)) as pool:
        return list(pool.map(one, numbers))


def test_sender_with_one_second_timeout_gets_202_and_event_is_stored(
    start_server: Callable[..., Any], github_source: Any, slow_consumer: SlowConsumer
) -> None:
    server = start_server()
    results = send_all(server.url, range(0, 4), concurrently=False)
    results += send_all(server.url, range(4, 12), concurrently=True)

    for response, body in results:
        assert response.status_code == 202, response.text
        # The whole exchange, not just each read, fits in the sender's timeout.
        assert response.elapsed.total_seconds() < SENDER_TIMEOUT
        payload = response.json()
        assert payload["deliveries"] == 1
        event = Event.objects.get(pk=payload["id"])
        assert bytes(event.body) == body
        assert event.event_name == "push"
        assert event.source_id == github_source.id
        assert Delivery.objects.filter(event=event).count() == 1
    assert Event.objects.count() == 12


def test_the_slow_consumer_still_gets_every_event_in_the_background(
    start_server: Callable[..., Any], github_source: Any, slow_consumer: SlowConsumer
) -> None:
    server = start_server()
    results = send_all(server.url, range(0, 6), concurrently=True)
    assert [r.status_code for r, _ in results] == [202] * 6

    sent = sorted(body for _, body in results)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(slow_consumer.received()) < len(sent):
        time.sleep(0.2)
    assert sorted(slow_consumer.received()) == sent, server.log()[-3000:]
