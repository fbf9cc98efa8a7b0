"""Hookway's ASGI app for the benchmarks, with one loop-lag file per worker process.

HOOKWAY_LOOP_LAG_FILE names one file per process; with ``uvicorn --workers 2`` both
workers would write the same path and the last one to stop would win. Each worker
imports this module in its own process, so it points the variable at
``<BENCH_LOOP_LAG_PREFIX>.<pid>.json`` before Hookway reads its settings.

With ``BENCH_LAG_ROUTE=1`` the app also answers ``GET /_bench/lag`` (the lag summary of
Hookway's own monitor, hookway.loopmonitor, since the last reset) and
``POST /_bench/lag/reset`` (forget the samples so far), so a benchmark can read the lag
of its measured window alone, without the idle start-up and warm-up. Bench-only: it
reads hookway.runtime's monitor, which no public interface exposes.
"""

import json
import os
from typing import Any

_prefix = os.environ.get("BENCH_LOOP_LAG_PREFIX")
if _prefix:
    os.environ["HOOKWAY_LOOP_LAG_FILE"] = f"{_prefix}.{os.getpid()}.json"

from hookway.asgi import application as hookway_application  # noqa: E402

LAG_PATH = "/_bench/lag"


async def _lag_route(scope: dict[str, Any], receive: Any, send: Any) -> None:
    from hookway import runtime

    task = runtime._monitor  # bench-only: the server's own monitor
    if task is None:
        status, doc = 404, {"error": "no loop monitor (set HOOKWAY_LOOP_LAG_FILE)"}
    elif scope["path"] == LAG_PATH + "/reset" and scope["method"] == "POST":
        task.monitor.samples.clear()
        status, doc = 200, {"reset": True}
    else:
        status, doc = 200, task.monitor.summary()
    body = json.dumps(doc).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _with_lag_route(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http" and scope["path"].startswith(LAG_PATH):
        await _lag_route(scope, receive, send)
        return
    await hookway_application(scope, receive, send)


application = _with_lag_route if os.environ.get("BENCH_LAG_ROUTE") == "1" else hookway_application

__all__ = ["application"]
