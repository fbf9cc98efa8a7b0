"""One metrics directory for all of gunicorn's workers when the operator set none.

Each gunicorn worker is its own process with its own counters; a scrape reaches one of
them. prometheus-client's multiprocess mode sums them, given a directory they all write
to (PROMETHEUS_MULTIPROC_DIR) set before any of them starts. Hookway's worker class
(hookway.server.UvicornWorker) calls ``share_across_workers`` in gunicorn's master,
before the workers are forked: with no directory set, it makes a private one, which the
workers inherit through the environment and the master removes when it exits.

An operator who sets PROMETHEUS_MULTIPROC_DIR owns the directory: Hookway creates it if
missing and never empties it (standalone dispatchers on the machine may share it);
empty it before starting (docs/operations.md, "Metrics").
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile

ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_across_workers(log: logging.Logger | None = None) -> str:
    """Make sure the processes forked from this one count into one directory; return it."""
    log = log or logging.getLogger("hookway.metrics")
    current = os.environ.get(ENV)
    if current:
        os.makedirs(current, exist_ok=True)
        return current
    if "prometheus_client.values" in sys.modules:
        # Loaded before the variable was set (gunicorn --preload imports the app in the
        # master first): this process's counters are per process, and so its workers'.
        log.warning(
            "Hookway's metrics can't be summed across workers: the app was loaded before "
            "%s was set (gunicorn --preload?); set %s to an empty directory yourself",
            ENV,
            ENV,
        )
    path = tempfile.mkdtemp(prefix="hookway-metrics-")
    os.environ[ENV] = path
    owner = os.getpid()

    def remove() -> None:
        # Forked workers inherit this exit handler; only the master removes the directory.
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path
