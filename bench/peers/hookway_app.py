"""Hookway's ASGI app for the benchmarks, with one loop-lag file per worker process.

HOOKWAY_LOOP_LAG_FILE names one file per process; with ``uvicorn --workers 2`` both
workers would write the same path and the last one to stop would win. Each worker
imports this module in its own process, so it points the variable at
``<BENCH_LOOP_LAG_PREFIX>.<pid>.json`` before Hookway reads its settings.
"""

import os

_prefix = os.environ.get("BENCH_LOOP_LAG_PREFIX")
if _prefix:
    os.environ["HOOKWAY_LOOP_LAG_FILE"] = f"{_prefix}.{os.getpid()}.json"

from hookway.asgi import application  # noqa: E402

__all__ = ["application"]
