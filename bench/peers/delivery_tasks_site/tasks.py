"""The delivery task: the same HTTP POST Hookway's dispatcher makes (1 KB JSON body,
``webhook-id`` header), through one keep-alive httpx client per worker process."""

from __future__ import annotations

import httpx
from django_tasks import task

_client: httpx.Client | None = None


def _http() -> httpx.Client:
    global _client
    if _client is None:
        _client = httpx.Client(timeout=30, trust_env=False)
    return _client


@task()
def deliver(url: str, body: str, bench_id: str) -> int:
    response = _http().post(
        url,
        content=body.encode(),
        headers={"Content-Type": "application/json", "webhook-id": bench_id},
    )
    response.raise_for_status()
    return response.status_code
