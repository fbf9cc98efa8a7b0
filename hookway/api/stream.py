"""/api/v1/stream: new events and delivery outcomes as Server-Sent Events.

Every message has an ``id:`` (a cursor, hookway.api.cursor); a client that reconnects
with it in ``Last-Event-ID`` first gets what it missed from the database (at most
HOOKWAY_STREAM_BACKFILL messages), then the live feed (hookway.api.feed), with nothing
missed and nothing twice. A ``: keepalive`` comment every HOOKWAY_STREAM_HEARTBEAT
seconds keeps proxies from closing a quiet stream and tells the client it is alive.

Once subscribed, a client holds no thread and no database connection: the request's
are given back (hookway.gate.arelease_request_thread) before the live feed starts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from django.http import HttpRequest, StreamingHttpResponse
from ninja import Query, Router

from hookway import conf, gate
from hookway.api import feed as feed_module
from hookway.api.cursor import BadCursor, Cursor, Message, advance, matches
from hookway.api.errors import ApiError
from hookway.api.feed import Overflow
from hookway.api.filters import EventFilters

router = Router(tags=["stream"])

# What a browser's EventSource waits before reconnecting (ms), sent first.
RETRY_MS = 2000


def _comment(text: str) -> bytes:
    return f": {text}\n\n".encode()


async def backfill(
    cursor: Cursor, filters: EventFilters, limit: int
) -> tuple[list[Message], Cursor, bool]:
    """What a client at ``cursor`` missed, from the database: up to ``limit`` messages
    matching ``filters``, the cursor after them, and whether more were left."""
    out: list[Message] = []
    while True:
        changes = await gate.achanges_since(
            cursor.event, cursor.attempt, cursor.pending, feed_module.PAGE
        )
        messages, after = advance(cursor, changes)
        for message in messages:
            if matches(filters, message):
                if len(out) == limit:
                    return out, cursor, True
                out.append(message)
            cursor = message.cursor
        cursor = after
        if len(changes.events) < feed_module.PAGE and len(changes.attempts) < feed_module.PAGE:
            return out, cursor, False


async def _events(
    request: HttpRequest, filters: EventFilters, resume: Cursor | None
) -> AsyncIterator[bytes]:
    feed = feed_module.current()
    subscriber, start = await feed.subscribe(filters)
    try:
        cursor = start
        # The opening block carries the cursor the stream starts from: a client that
        # loses the connection before any message came reconnects from here, missing
        # nothing (an id with no data dispatches no event, but it is the id EventSource
        # sends back as Last-Event-ID).
        opening = resume if resume is not None else start
        yield f"retry: {RETRY_MS}\nid: {opening.encode()}\n".encode() + _comment(
            "hookway event stream"
        )
        if resume is not None:
            missed, reached, more = await backfill(resume, filters, conf.get().stream_backfill)
            for message in missed:
                yield message.sse(message.cursor).encode()
            cursor = reached
            if more:
                # Too far behind to replay: say so, and go on from the live feed.
                cursor = cursor.merge(start)
                data = json.dumps(
                    {
                        "detail": f"more than {conf.get().stream_backfill} messages "
                        "were missed; the rest are in GET /api/v1/events"
                    }
                )
                yield f"id: {cursor.encode()}\nevent: gap\ndata: {data}\n\n".encode()
        # From here on the client holds no thread and no database connection.
        await gate.arelease_request_thread()
        heartbeat = conf.get().stream_heartbeat
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    item = await subscriber.queue.get()
            except TimeoutError:
                yield _comment("keepalive")
                continue
            if isinstance(item, Overflow):
                data = json.dumps(
                    {
                        "detail": "this client fell too far behind and was disconnected; "
                        "reconnect with Last-Event-ID to resume"
                    }
                )
                yield f"event: overflow\ndata: {data}\n\n".encode()
                return
            if cursor.has(item):
                continue  # given already, from the backfill
            cursor = cursor.merge(item.cursor)
            yield item.sse(cursor).encode()
    finally:
        feed.unsubscribe(subscriber)


@router.get(
    "",
    summary="New events and delivery outcomes, live (text/event-stream)",
    openapi_extra={
        "parameters": [
            {
                "in": "header",
                "name": "Last-Event-ID",
                "required": False,
                "schema": {"type": "string"},
                "description": "The `id:` of the last message received: resume after it.",
            }
        ],
        # 200 as ninja keys it (an int): "200" would be a second, duplicate key.
        "responses": {
            200: {
                "description": "A Server-Sent Events stream: `event: event` and "
                "`event: delivery` messages, each with an `id:` to resume from "
                "(`Last-Event-ID`), and `: keepalive` comments.",
                "content": {"text/event-stream": {"schema": {"type": "string"}}},
            }
        },
    },
)
async def stream(
    request: HttpRequest,
    filters: Query[EventFilters],
) -> StreamingHttpResponse:
    resume = None
    last_event_id = request.headers.get("Last-Event-ID")
    if last_event_id:
        try:
            resume = Cursor.decode(last_event_id)
        except BadCursor as exc:
            raise ApiError(400, "bad_last_event_id", str(exc)) from None
    response = StreamingHttpResponse(
        _events(request, filters, resume), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each message on at once
    return response
