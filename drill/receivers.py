"""The three destinations, real HTTP servers on 127.0.0.1 in the drill's process (threads,
like tests/receivers.py), each recording every complete request it gets as a ``Hit``.

- ``steady`` answers 200 (after ``work`` seconds: it processes the webhook first).
- ``trickle`` answers like steady, except while its fault window is open: then it sends
  the status line and one header byte every 2 s for longer than the dispatcher's lease
  plus the destination's timeout (a receiver stuck mid-answer), then finishes with 200.
- ``flap`` cycles up (like steady), down with the connection refused (listening socket closed;
  requests on connections already open are dropped unanswered) and down with 503.

A hit is *accepted* when the receiver answered (or began answering) 2xx: a real receiver
would have processed that webhook. Two accepted hits of one ``webhook-id`` are a
duplicate delivery; a 503 or a dropped request was refused, and its retry is not one.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from drill.timeline import Timeline

OK = "200"
TRICKLED = "200 trickled"
UNAVAILABLE = "503"
DROPPED = "dropped"
ACCEPTED = frozenset({OK, TRICKLED})


@dataclass
class Hit:
    destination: str
    webhook_id: str
    seq: int | None  # from the body, to map a hit back to the webhook the sender sent
    run: str | None
    attempt: int | None  # X-Hookway-Attempt
    at: float  # timeline seconds when the request was complete
    answer: str  # OK, TRICKLED, UNAVAILABLE or DROPPED
    completed: bool = False  # the whole answer was written

    @property
    def accepted(self) -> bool:
        return self.answer in ACCEPTED


class HitLog:
    """Every hit on every receiver, in arrival order (thread-safe)."""

    def __init__(self) -> None:
        self._hits: list[Hit] = []
        self._lock = threading.Lock()

    def add(self, hit: Hit) -> None:
        with self._lock:
            self._hits.append(hit)

    def all(self) -> list[Hit]:
        with self._lock:
            return list(self._hits)

    def __len__(self) -> int:
        with self._lock:
            return len(self._hits)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _payload(body: bytes) -> tuple[int | None, str | None]:
    try:
        data = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    seq, run = data.get("seq"), data.get("run")
    return (seq if isinstance(seq, int) else None), (run if isinstance(run, str) else None)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # two dispatchers open up to 40 connections at once
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a dispatcher killed mid-request resets its connections: expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        self.server.receiver.handle(self)


class Receiver:
    """The steady receiver; subclasses change ``action``."""

    def __init__(self, name: str, timeline: Timeline, hits: HitLog, work: float = 0.0) -> None:
        self.name = name
        self.timeline = timeline
        self.hits = hits
        self.work = work
        self.port = free_port()
        self.stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.name}"

    def open(self) -> None:
        """Listen (again) on the receiver's port."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", self.port), _Handler)
        server.receiver = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop listening: new connections are refused. Blocking (up to ~50 ms)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def stop(self) -> None:
        self.stopping.set()
        self.close()

    def action(self) -> str:
        return OK

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        length = _int(request.headers.get("Content-Length")) or 0
        body = request.rfile.read(length)
        if len(body) < length:
            request.close_connection = True
            return  # the sender died mid-request: nothing was delivered
        seq, run = _payload(body)
        answer = self.action()
        hit = Hit(
            destination=self.name,
            webhook_id=request.headers.get("webhook-id", ""),
            seq=seq,
            run=run,
            attempt=_int(request.headers.get("X-Hookway-Attempt")),
            at=self.timeline.now(),
            answer=answer,
        )
        self.hits.add(hit)
        try:
            if answer == DROPPED:
                request.close_connection = True
            elif answer == UNAVAILABLE:
                self._reply(request, 503, b'{"down": true}', {"Retry-After": "1"})
            elif answer == TRICKLED:
                self._trickle(request)
                hit.completed = True
            else:
                if self.work:
                    self.stopping.wait(self.work)
                self._reply(request, 200, b'{"ok": true}')
                hit.completed = True
        except OSError:
            request.close_connection = True  # the dispatcher gave up on us

    @staticmethod
    def _reply(
        request: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        request.send_response(status)
        for name, value in (headers or {}).items():
            request.send_header(name, value)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def _trickle(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError


class TrickleReceiver(Receiver):
    def __init__(
        self,
        name: str,
        timeline: Timeline,
        hits: HitLog,
        work: float,
        seconds: float,
        byte_every: float,
    ) -> None:
        super().__init__(name, timeline, hits, work)
        self.trickling = threading.Event()
        self.seconds = seconds
        self.byte_every = byte_every

    def action(self) -> str:
        return TRICKLED if self.trickling.is_set() else OK

    def _trickle(self, request: BaseHTTPRequestHandler) -> None:
        # Raw bytes: http.server would buffer the status line until the headers end.
        request.wfile.write(b"HTTP/1.1 200 OK\r\n")
        header = b"X-Trickle: slow"
        sent = 0
        end = time.monotonic() + self.seconds
        while time.monotonic() < end and sent < len(header) and not self.stopping.is_set():
            self.stopping.wait(self.byte_every)
            request.wfile.write(header[sent : sent + 1])
            sent += 1
        request.wfile.write(header[sent:] + b"\r\nContent-Length: 2\r\n\r\nok")


class FlapReceiver(Receiver):
    UP = "up"
    REFUSED = "down (connection refused)"
    UNAVAILABLE = "down (503)"

    def __init__(self, name: str, timeline: Timeline, hits: HitLog, work: float) -> None:
        super().__init__(name, timeline, hits, work)
        self.mode = self.UP

    def action(self) -> str:
        return {self.UP: OK, self.REFUSED: DROPPED, self.UNAVAILABLE: UNAVAILABLE}[self.mode]

    def set_mode(self, mode: str) -> None:
        """Go up or down. Blocking (closing the listener waits for its loop)."""
        self.mode = mode
        if mode == self.REFUSED:
            self.close()
        elif not self.stopping.is_set():
            self.open()
