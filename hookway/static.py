"""Static files (the admin's CSS and JavaScript) served by WhiteNoise, over ASGI.

WhiteNoise is WSGI middleware; its Django middleware runs under ASGI only as sync
middleware (two thread hops per request) answering with a sync file iterator, which
Django must consume in a thread and warns about. Here its file index and responders do
what they are good at (finding the file, choosing a compressed variant, ETag,
conditional and range requests, cache headers) and this module sends the answer over
ASGI, reading the file in a thread. Files come from the apps' static folders (no
``collectstatic`` needed) and from STATIC_ROOT when ``collectstatic`` filled it
(compressed variants and hashed names).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from whitenoise.middleware import WhiteNoiseMiddleware

Send = Callable[[Mapping[str, Any]], Awaitable[None]]
BLOCK_SIZE = 64 * 1024


class StaticFiles:
    def __init__(self) -> None:
        with warnings.catch_warnings():
            # Before the first collectstatic, STATIC_ROOT doesn't exist: the files are
            # served from the apps' static folders, which is all WhiteNoise warns about.
            warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
            self._whitenoise = WhiteNoiseMiddleware(get_response=None)
        self.prefix: str = self._whitenoise.static_prefix

    def _find(self, path: str) -> Any:
        if self._whitenoise.autorefresh:
            return self._whitenoise.find_file(path)
        return self._whitenoise.files.get(path)

    async def serve(self, scope: Mapping[str, Any], send: Send) -> bool:
        """Answer a request for a static file; False (nothing sent) if there is none
        at this path, so the request goes on to Django."""
        static_file = self._find(scope.get("path", ""))
        if static_file is None:
            return False
        meta = {
            "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        response = static_file.get_response(scope.get("method", "GET"), meta)
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        await send(
            {"type": "http.response.start", "status": int(response.status), "headers": headers}
        )
        if response.file is None:
            await send({"type": "http.response.body", "body": b""})
            return True
        try:
            while True:
                block = await asyncio.to_thread(response.file.read, BLOCK_SIZE)
                more = len(block) == BLOCK_SIZE
                await send({"type": "http.response.body", "body": block, "more_body": more})
                if not more:
                    break
        finally:
            await asyncio.to_thread(response.file.close)
        return True
