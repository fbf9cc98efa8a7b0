"""What a route's rules cost per event, in the thread that fans events out (ingest's
writer) or claims deliveries (the dispatcher): a $-operator match, a CEL filter reading
two fields (only they reach CEL), a CEL filter reading the whole payload, and a
transform; for GitHub-push-sized payloads of about 1 KB, 10 KB and 100 KB.

    .venv/bin/python -m bench.routing [--repeat N]

Prints the median of N timed runs per case, in microseconds per event, and the ratio of
the whole-payload filter to the two-field one (why expr.prune exists). No database:
this is the rules' own cost, parsing the body included (once per event, whatever the
number of routes). Not a test: timings on a shared 2-core machine are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")


def payload(items: int) -> bytes:
    return json.dumps(
        {
            "ref": "refs/heads/main",
            "data": {"amount": 150, "currency": "usd"},
            "commits": [
                {
                    "id": f"{i:040x}",
                    "message": "Fix the flaky test " * 2,
                    "author": {"name": "Ada", "email": "ada@example.com"},
                    "added": ["src/a.py"],
                    "modified": ["src/b.py", "README.md"],
                }
                for i in range(items)
            ],
        }
    ).encode()


def per_event(run: Callable[[], object], repeat: int) -> float:
    """Median microseconds per call over ``repeat`` batches."""
    batch = 50
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(batch):
            run()
        times.append((time.perf_counter() - started) / batch * 1e6)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from hookway.routing import rules

    cases = {
        "match (2 paths)": rules.check(
            match_doc={"payload.data.amount": {"$gte": 100}, "payload.ref": "refs/heads/main"}
        ),
        "CEL filter, 2 fields": rules.check(
            "payload.data.amount >= 100 && payload.ref == 'refs/heads/main'"
        ),
        "CEL filter, whole payload": rules.check("size(payload) > 0"),
        "CEL transform, 3 fields": rules.check(
            transform="{'ref': payload.ref, 'amount': payload.data.amount, 'n': size(payload.commits)}"
        ),
    }
    print(f"{'payload':>10} | " + " | ".join(f"{name:>26}" for name in cases) + " | whole/2 fields")
    for items in (3, 40, 400):
        body = payload(items)
        row = []
        for compiled in cases.values():

            def run(compiled: rules.RouteRules = compiled, body: bytes = body) -> object:
                event = rules.EventVariables(body, {"X-Team": "ops"}, "push", "github")
                if compiled.transform is not None:
                    return rules.reshape(compiled.transform, event)
                return rules.decide(compiled, event)

            row.append(per_event(run, args.repeat))
        ratio = row[2] / row[1]
        size = f"{len(body) / 1024:.0f} KB"
        print(f"{size:>10} | " + " | ".join(f"{us:>23.1f} us" for us in row) + f" | {ratio:.1f}x")


if __name__ == "__main__":
    import django

    django.setup()
    main()
