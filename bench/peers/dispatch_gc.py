"""``manage.py dispatch`` with the cyclic garbage collector's pauses recorded, for
bench/gc_pauses.py.

``python -m bench.peers.dispatch_gc <dispatch options>`` runs the command as
``./manage.py dispatch`` would, with a ``gc.callbacks`` timer; at exit it writes the
pauses to the JSON file ``BENCH_GC_FILE`` names: one ``[generation, ms]`` per collection
that ran once startup was done (the heap frozen by hookway.runtime.prepare_collector),
and the thresholds the process ended with.
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import time
from typing import Any

pauses: list[tuple[int, float]] = []
_began = [0.0]
_frozen = [False]


def _timer(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _began[0] = time.perf_counter()
        return
    ms = (time.perf_counter() - _began[0]) * 1000
    # Startup's own collections are not the question. get_freeze_count() walks the
    # frozen objects (milliseconds once there are hundreds of thousands): asked only
    # until the heap is frozen.
    if not _frozen[0]:
        _frozen[0] = gc.get_freeze_count() > 0
        if not _frozen[0]:
            return
    pauses.append((info["generation"], ms))


def _write() -> None:
    doc = {"pauses": pauses, "threshold": gc.get_threshold()}
    with open(os.environ["BENCH_GC_FILE"], "w") as out:
        json.dump(doc, out)


def main() -> None:
    from django.core.management import execute_from_command_line

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hookway.standalone.settings")
    gc.callbacks.append(_timer)
    atexit.register(_write)
    execute_from_command_line(["manage.py", "dispatch", *sys.argv[1:]])


if __name__ == "__main__":
    main()
