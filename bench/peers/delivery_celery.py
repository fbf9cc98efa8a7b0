"""The Celery delivery peer for bench/delivery.py: the same HTTP POST as Hookway's
dispatcher, as a Celery task on Redis (127.0.0.1:6379), with Celery's defaults otherwise.

Worker: ``celery -A bench.peers.delivery_celery worker --pool prefork|threads -c N``.
Producer: ``python -m bench.peers.delivery_celery --url ... --n N [--rate R] --out acks.json``
(``.delay()`` per event, as a view would; the ack time is when ``.delay()`` returned).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import httpx
from celery import Celery

QUEUE = os.environ.get("BENCH_CELERY_QUEUE", "hookway-bench-delivery")
app = Celery(
    "hookway_bench_delivery", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
)
app.conf.update(
    task_default_queue=QUEUE,
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)

_local = threading.local()


def _http() -> httpx.Client:
    # One keep-alive client per worker thread (threads pool) or process (prefork).
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = httpx.Client(timeout=30, trust_env=False)
    return client


@app.task(name="bench.deliver")
def deliver(url: str, body: str, bench_id: str) -> int:
    response = _http().post(
        url,
        content=body.encode(),
        headers={"Content-Type": "application/json", "webhook-id": bench_id},
    )
    response.raise_for_status()
    return response.status_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--prefix", default="ev")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--purge", action="store_true", help="empty the queue and exit")
    args = parser.parse_args(argv)
    if args.purge:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge(QUEUE)
        return 0

    from bench.peers.hookway_produce import body_for

    acks: dict[str, float] = {}
    began = time.monotonic()
    for i in range(args.n):
        if args.rate > 0:
            delay = began + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        bench_id = f"{args.prefix}-{i}"
        deliver.delay(args.url, body_for(bench_id).decode(), bench_id)
        acks[bench_id] = time.time()
    if args.out is not None:
        args.out.write_text(json.dumps(acks))
    print(f"enqueued {len(acks)} tasks", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
