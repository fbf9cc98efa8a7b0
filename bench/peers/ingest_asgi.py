"""The physical limit of the ingest benchmark: a bare ASGI app, no framework.

It does what every contender does for a webhook, and nothing else: read the body, check
the HMAC (constant time), parse the JSON, insert the row into SQLite (WAL,
``synchronous=FULL``: the ack waits for the fsync), answer 202 with the id.

Two modes (``BARE_MODE``):
- ``commit``: one transaction (one fsync) per request, on the event loop itself (the
  loop is blocked during the commit; nothing else could run on it anyway).
- ``group``: group commit: requests queue their row and one writer thread commits
  everything queued so far in one transaction (one fsync for the batch); each request
  is answered after the commit holding its row. The same idea as Hookway's ingest path,
  with nothing around it: the ceiling for an fsync-durable ack on this machine.

Run: ``uvicorn bench.peers.ingest_asgi:app --workers 2`` with ``BARE_DB`` set.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

SECRET = os.environ.get("INGEST_SECRET", "bench-secret").encode()
MODE = os.environ.get("BARE_MODE", "commit")
SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY, source_id INTEGER NOT NULL, event_name TEXT NOT NULL,
    delivery_id TEXT, content_type TEXT NOT NULL, headers TEXT NOT NULL,
    body BLOB NOT NULL, received_at TEXT NOT NULL)
"""
INSERT = "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)"


def connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    db.execute(SCHEMA)
    return db


_db = connect(os.environ.get("BARE_DB", "/tmp/hookway-bench-bare.sqlite3"))
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bare-writer")
_pending: list[tuple[tuple[Any, ...], asyncio.Future[None]]] = []
_flusher: asyncio.Task[None] | None = None


def _commit(rows: list[tuple[Any, ...]]) -> None:
    _db.execute("BEGIN IMMEDIATE")
    try:
        _db.executemany(INSERT, rows)
    except BaseException:  # re-raised: roll back whatever interrupted the insert
        _db.execute("ROLLBACK")
        raise
    _db.execute("COMMIT")


async def _flush() -> None:
    loop = asyncio.get_running_loop()
    while _pending:
        batch = _pending[:256]
        del _pending[:256]
        try:
            await loop.run_in_executor(_executor, _commit, [row for row, _ in batch])
        except Exception as exc:  # noqa: BLE001 - each waiting request gets the failure
            for _, future in batch:
                future.set_exception(exc)
        else:
            for _, future in batch:
                future.set_result(None)


async def _store(row: tuple[Any, ...]) -> None:
    global _flusher
    if MODE != "group":
        _commit([row])
        return
    future = asyncio.get_running_loop().create_future()
    _pending.append((row, future))
    if _flusher is None or _flusher.done():
        _flusher = asyncio.create_task(_flush())
    await future


async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "http":
        return
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers.get("x-signature-256", "")):
        await _answer(send, 401, {"error": "bad signature"})
        return
    try:
        payload = json.loads(body)
    except ValueError:
        await _answer(send, 400, {"error": "malformed JSON"})
        return
    event_id = "evt_" + secrets.token_hex(13)
    row = (
        event_id,
        1,
        str(payload.get("event_name", "")),
        headers.get("idempotency-key"),
        headers.get("content-type", ""),
        json.dumps(headers),
        body,
        datetime.now(UTC).isoformat(),
    )
    await _store(row)
    await _answer(send, 202, {"id": event_id})
