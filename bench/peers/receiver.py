"""The benchmarks' webhook receiver: a bare asyncio HTTP/1.1 server (uvloop when present)
that answers every POST after a fixed delay without blocking, and records when each
webhook arrived.

Why not uvicorn or aiohttp.web: the receiver shares the machine's two cores with the
system under test, so it should cost as little CPU per request as possible. A
``call_later`` per request and no coroutine at all keeps it near the cost of the socket
calls. It runs in its own process, so its CPU time never counts against the dispatcher.

Routes:
- ``POST /delay/<ms>/<anything>``: answer 200 after <ms> milliseconds.
- ``POST <anything else>``: answer 200 after ``--delay-ms``.
- ``GET /_stats``: ``{"count", "duplicates", "inflight", "max_inflight", "first", "last"}``.
- ``GET /_arrivals``: ``[[bench_id, unix_time, path], ...]`` in arrival order.
- ``POST /_reset``: forget everything.

A POST body's ``"bench_id":"..."`` (the first one) names the event, so the harness can
join arrival times with ack times; ``time.time()`` is used on both sides (one machine).

Run: ``python -m bench.peers.receiver --port 8123 --delay-ms 100``; prints ``ready``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from typing import cast

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024
OK = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
OK_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
    b"Connection: close\r\n\r\nok"
)
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
ID_MARK = b'"bench_id":"'


class State:
    def __init__(self, delay: float):
        self.delay = delay
        self.reset()

    def reset(self) -> None:
        self.arrivals: list[tuple[str, float, str]] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        self.inflight = 0
        self.max_inflight = 0

    def stats(self) -> dict[str, object]:
        return {
            "count": len(self.arrivals),
            "duplicates": self.duplicates,
            "inflight": self.inflight,
            "max_inflight": self.max_inflight,
            "first": self.arrivals[0][1] if self.arrivals else None,
            "last": self.arrivals[-1][1] if self.arrivals else None,
        }


def _bench_id(body: bytes) -> str:
    start = body.find(ID_MARK)
    if start < 0:
        return ""
    start += len(ID_MARK)
    end = body.find(b'"', start)
    return body[start:end].decode("ascii", "replace") if end > start else ""


def _json_response(payload: object) -> bytes:
    data = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    ).encode()
    return head + data


class ReceiverProtocol(asyncio.Protocol):
    def __init__(self, state: State, loop: asyncio.AbstractEventLoop):
        self.state = state
        self.loop = loop
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports don't subclass asyncio.Transport; same interface.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > MAX_HEAD:
                    self._fail()
                return
            head = bytes(self.buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self._fail()
                return
            method, path = parts[0], parts[1]
            length = 0
            close = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    try:
                        length = int(value.strip())
                    except ValueError:
                        self._fail()
                        return
                elif name == "connection" and value.strip().lower() == "close":
                    close = True
                elif name == "transfer-encoding":
                    # Every client the benchmarks use sends Content-Length.
                    self._fail()
                    return
            if length < 0 or length > MAX_BODY:
                self._fail()
                return
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = bytes(self.buf[end + 4 : total])
            del self.buf[:total]
            self._handle(method, path, body, close)

    def _fail(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(BAD)
            self.transport.close()
        self.buf.clear()

    def _handle(self, method: str, path: str, body: bytes, close: bool) -> None:
        state = self.state
        if path.startswith("/_"):
            if path == "/_stats":
                self._write(_json_response(state.stats()), close)
            elif path == "/_arrivals":
                self._write(_json_response(state.arrivals), close)
            elif path == "/_reset" and method == "POST":
                state.reset()
                self._write(_json_response({"reset": True}), close)
            else:
                self._write(BAD, True)
            return
        now = time.time()
        bench_id = _bench_id(body)
        if bench_id:
            if bench_id in state.seen:
                state.duplicates += 1
            else:
                state.seen.add(bench_id)
        state.arrivals.append((bench_id, now, path))
        delay = state.delay
        if path.startswith("/delay/"):
            with contextlib.suppress(ValueError, IndexError):
                delay = int(path.split("/", 3)[2]) / 1000
        state.inflight += 1
        state.max_inflight = max(state.max_inflight, state.inflight)
        self.loop.call_later(delay, self._answer, close)

    def _answer(self, close: bool) -> None:
        self.state.inflight -= 1
        self._write(OK_CLOSE if close else OK, close)

    def _write(self, data: bytes, close: bool) -> None:
        if self.transport is None or self.closed:
            return
        self.transport.write(data)
        if close:
            self.transport.close()


async def serve(host: str, port: int, delay: float) -> None:
    loop = asyncio.get_running_loop()
    state = State(delay)
    server = await loop.create_server(
        lambda: ReceiverProtocol(state, loop), host, port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    async with server:
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=100.0)
    args = parser.parse_args(argv)
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    runner(serve(args.host, args.port, args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
