"""The sender: a steady stream of webhooks that behaves like a real webhook sender.

Each webhook has a unique ``Idempotency-Key`` (Hookway's dedupe key for token sources)
and a unique ``seq`` in its JSON body (so the receivers can tell which webhook reached
them). New webhooks start on a fixed schedule whatever happens to earlier ones (senders
don't wait for each other). On a 503, a 5xx, a connection error or no answer within
10 s (GitHub's and GitLab's timeout) the sender posts the same webhook again, same key,
same body, with backoff (honouring Retry-After up to 5 s), until it gets a 2xx or the
load ends. A 4xx is final: a real sender would not retry it.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass

import httpx
from httpx_aiohttp import AiohttpTransport

from drill.config import EVENT_NAME, TOKEN
from drill.timeline import Timeline

NO_ANSWER = "no answer in time"
MAX_BACKOFF = 5.0


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange: what the sender was told, and how long it waited."""

    seq: int
    sent: float  # timeline seconds
    latency: float
    status: int | None  # None: connection error or no answer (``error`` says which)
    error: str = ""


@dataclass
class Webhook:
    seq: int
    key: str
    body: bytes
    created: float
    tries: int = 0
    acked_at: float | None = None
    ack_status: int | None = None
    event_id: str | None = None  # the id in the 2xx answer
    gave_up: str = ""  # why the sender stopped without a 2xx

    @property
    def acked(self) -> bool:
        return self.acked_at is not None


def _error_name(exc: httpx.HTTPError) -> str:
    # httpx-aiohttp maps aiohttp's errors loosely (a dropped connection becomes
    # ConnectTimeout); the aiohttp exception underneath names what happened.
    cause = exc.__cause__ or exc
    return type(cause).__name__


class Sender:
    def __init__(
        self,
        url: str,
        run_id: str,
        rate: float,
        duration: float,
        timeout: float,
        timeline: Timeline,
    ) -> None:
        self.url = url
        self.run_id = run_id
        self.rate = rate
        self.duration = duration
        self.timeout = timeout
        self.timeline = timeline
        self.webhooks: dict[int, Webhook] = {}
        self.answers: list[Answer] = []
        self.stop_at = duration  # timeline seconds: no retry is started after this
        self._rng = random.Random(run_id)

    def webhook(self) -> Webhook:
        """A new webhook with the next seq (remembered in ``webhooks``)."""
        seq = len(self.webhooks) + 1
        key = f"{self.run_id}-{seq}"
        body = json.dumps(
            {"event_name": EVENT_NAME, "seq": seq, "run": self.run_id, "key": key},
            separators=(",", ":"),
        ).encode()
        hook = Webhook(seq, key, body, self.timeline.now())
        self.webhooks[seq] = hook
        return hook

    @staticmethod
    def _client() -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=5000, max_keepalive_connections=200)
        transport = AiohttpTransport(limits=limits, trust_env=False)
        return httpx.AsyncClient(transport=transport, timeout=None)

    async def run(self) -> None:
        """Send for ``duration`` seconds at ``rate``; return once every webhook was acked
        or given up (at most one client timeout after the load ends)."""
        loop = asyncio.get_running_loop()
        async with self._client() as client:
            start = loop.time()
            tasks = []
            for i in range(round(self.duration * self.rate)):
                delay = start + i / self.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(self._deliver(client, self.webhook())))
            await asyncio.gather(*tasks)

    async def send_more(self, count: int, within: float) -> list[Webhook]:
        """Send ``count`` more webhooks at once, retrying each for up to ``within``
        seconds; return them."""
        self.stop_at = self.timeline.now() + within
        hooks = [self.webhook() for _ in range(count)]
        async with self._client() as client:
            await asyncio.gather(*(self._deliver(client, hook) for hook in hooks))
        return hooks

    async def _deliver(self, client: httpx.AsyncClient, hook: Webhook) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Token": TOKEN,
            "Idempotency-Key": hook.key,
        }
        backoff = 0.5
        while True:
            hook.tries += 1
            sent = self.timeline.now()
            status: int | None = None
            error = ""
            retry_after = 0.0
            try:
                async with asyncio.timeout(self.timeout):
                    response = await client.post(self.url, content=hook.body, headers=headers)
                    await response.aread()
                status = response.status_code
                if 200 <= status < 300:
                    hook.event_id = _event_id(response)
                retry_after = _retry_after(response)
            except TimeoutError:
                error = NO_ANSWER
            except httpx.HTTPError as exc:
                error = _error_name(exc)
            now = self.timeline.now()
            self.answers.append(Answer(hook.seq, sent, now - sent, status, error))
            if status is not None and 200 <= status < 300:
                hook.acked_at = now
                hook.ack_status = status
                return
            if status is not None and status < 500:
                hook.gave_up = f"HTTP {status} (not retried)"
                return
            wait = min(max(backoff, retry_after), MAX_BACKOFF) * self._rng.uniform(0.8, 1.2)
            backoff = min(backoff * 2, MAX_BACKOFF)
            if now + wait > self.stop_at:
                hook.gave_up = "no 2xx before the sender stopped"
                return
            await asyncio.sleep(wait)


def _event_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else 0.0
