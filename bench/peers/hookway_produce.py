"""Store events straight into Hookway's database, as ingest does (one Event plus its
Delivery rows per transaction), for the delivery benchmarks.

- ``--rate 0`` (burst): ``--n`` events in transactions of ``--batch`` (ingest's group
  commit does the same under load); used to pre-fill the queue before a dispatcher starts.
- ``--rate R``: one event per transaction, R per second (open loop), each acked (committed)
  at its own time; used to measure ack-to-delivered latency with a dispatcher running.

Writes ``{bench_id: ack_unix_time}`` as JSON to ``--out`` (the time its commit returned).
Needs DATABASE_URL (migrated) and HOOKWAY_CONFIG (synced here first) in the environment.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def body_for(bench_id: str, size: int = 1024) -> bytes:
    """A JSON body of about ``size`` bytes that names its event (see bench.peers.receiver)."""
    head = f'{{"bench_id":"{bench_id}","event_name":"bench.delivery","pad":"'
    tail = '"}'
    return (head + "x" * max(0, size - len(head) - len(tail)) + tail).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", default="bench")
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--prefix", default="ev")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from hookway.config import file as config_file
    from hookway.config import sync as config_sync
    from hookway.models import Source
    from hookway.store.events import IncomingEvent, store_events

    if settings.HOOKWAY.config_path is not None:
        config_sync.sync(config_file.load(settings.HOOKWAY.config_path))
    source_id = Source.objects.get(slug=args.source).pk

    def incoming(bench_id: str) -> IncomingEvent:
        return IncomingEvent(
            source_id=source_id,
            event_name="bench.delivery",
            delivery_id=None,
            content_type="application/json",
            headers={},
            body=body_for(bench_id),
            received_at=timezone.now(),
        )

    acks: dict[str, float] = {}
    ids = [f"{args.prefix}-{i}" for i in range(args.n)]
    if args.rate <= 0:
        for start in range(0, args.n, args.batch):
            chunk = ids[start : start + args.batch]
            store_events([incoming(b) for b in chunk])
            now = time.time()
            acks.update(dict.fromkeys(chunk, now))
    else:
        began = time.monotonic()
        for i, bench_id in enumerate(ids):
            delay = began + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            store_events([incoming(bench_id)])
            acks[bench_id] = time.time()
    with connection.cursor() as cursor:
        # Leave a self-contained file behind (the benchmarks copy it as a template).
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if args.out is not None:
        args.out.write_text(json.dumps(acks))
    print(f"stored {len(acks)} events", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
