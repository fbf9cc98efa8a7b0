"""Enqueue delivery tasks for django-tasks-db (``task.enqueue``: one INSERT and commit
each, as a view would), burst or at ``--rate`` per second; write ``{bench_id: ack_time}``
to ``--out``. Needs DJANGO_SETTINGS_MODULE=bench.peers.delivery_tasks_site.settings."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--prefix", default="ev")
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    import django

    django.setup()
    from bench.peers.delivery_tasks_site.tasks import deliver
    from bench.peers.hookway_produce import body_for

    acks: dict[str, float] = {}
    began = time.monotonic()
    for i in range(args.n):
        if args.rate > 0:
            delay = began + i / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        bench_id = f"{args.prefix}-{i}"
        deliver.enqueue(args.url, body_for(bench_id).decode(), bench_id)
        acks[bench_id] = time.time()
    if args.out is not None:
        args.out.write_text(json.dumps(acks))
    print(f"enqueued {len(acks)} tasks", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
