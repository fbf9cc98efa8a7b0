"""Hookway's gunicorn worker class: ``gunicorn -k hookway.server.UvicornWorker``.

uvicorn-worker's worker, with one fix: at every shutdown it logged "Error while closing
socket [Errno 9] Bad file descriptor" per worker (benoitc/gunicorn#3013). uvicorn hands
gunicorn's listening sockets to its event loop, which closes their file descriptors when
the server stops (uvloop does so directly), and gunicorn then closes the same
descriptors again. This worker hands uvicorn duplicates instead: the loop closes its
own copies, gunicorn its originals.

It also makes the workers' Prometheus metrics add up (hookway.metrics.workers): in the
master, before any worker is forked, it gives them one PROMETHEUS_MULTIPROC_DIR.
"""

from __future__ import annotations

import contextlib
import os
import socket
from typing import Any

from uvicorn_worker import UvicornWorker as _UvicornWorker


class _LoopOwnedSocket(socket.socket):
    """A duplicate listening socket the event loop owns: closing it again after the
    loop closed its descriptor is not an error."""

    def close(self) -> None:
        with contextlib.suppress(OSError):
            super().close()


class UvicornWorker(_UvicornWorker):  # type: ignore[misc]  # uvicorn-worker ships no types
    sockets: list[Any]

    @classmethod
    def check_config(cls, cfg: Any, log: Any) -> None:
        # gunicorn calls this in the master once it listens, before forking workers.
        parent = getattr(super(), "check_config", None)
        if parent is not None:
            parent(cfg, log)
        from hookway.metrics.workers import share_across_workers

        share_across_workers()

    async def _serve(self) -> None:
        originals = self.sockets
        self.sockets = [
            _LoopOwnedSocket(s.family, s.type, s.proto, fileno=os.dup(s.fileno()))
            for s in originals
        ]
        try:
            await super()._serve()
        finally:
            self.sockets = originals
