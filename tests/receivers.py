"""Real HTTP receivers for delivery tests: a threaded HTTP server on 127.0.0.1 that
records every request and answers as the test scripts it (status, headers, delay)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when the request arrived
    answered_at: float = 0.0

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok": true}'
    delay: float = 0.0


Behaviour = Callable[[Received, int], Reply]


class Receiver:
    """``behaviour(request, n)`` decides each reply; n counts requests to that path (1-based)."""

    def __init__(self, behaviour: Behaviour | None = None, port: int = 0):
        self.behaviour: Behaviour = behaviour or (lambda request, n: Reply())
        self.requests: list[Received] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        self._connections: set[socket.socket] = set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def setup(self) -> None:
                super().setup()
                with receiver._lock:
                    receiver._connections.add(self.connection)

            def finish(self) -> None:
                with receiver._lock:
                    receiver._connections.discard(self.connection)
                super().finish()

            def do_POST(self) -> None:
                arrived = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    return  # the sender died mid-request: nothing was delivered
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver._in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver._in_flight)
                    n = receiver._counts[self.path] = receiver._counts.get(self.path, 0) + 1
                request = Received(self.path, headers, body, arrived)
                reply = receiver.behaviour(request, n)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the dispatcher gave up on us (timeout, shutdown)
                finally:
                    with receiver._lock:
                        receiver._in_flight -= 1
                        receiver.requests.append(
                            Received(request.path, headers, body, arrived, time.monotonic())
                        )

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                return  # a dispatcher killed mid-request resets its connections: expected

        self.server = Server(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def received(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if path is None or r.path == path]

    def stop(self) -> None:
        """Stop as a process that exits would: kept-alive connections are closed too."""
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
