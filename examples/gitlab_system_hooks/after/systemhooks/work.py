"""The slow part: what the project does with a system hook (15 s of I/O, simulated)."""

import asyncio
import json
import os
from pathlib import Path

IO_SECONDS = float(os.environ.get("EXAMPLE_IO_SECONDS", "15"))
HANDLED_LOG = Path(os.environ.get("EXAMPLE_HANDLED_LOG", "handled.log"))


async def handle_system_hook(event_name: str, payload: dict) -> None:
    await asyncio.sleep(IO_SECONDS)  # e.g. provisioning the new project elsewhere
    line = json.dumps({"event_name": event_name, "project_id": payload.get("project_id")})
    await asyncio.to_thread(_append, line)


def _append(line: str) -> None:
    with HANDLED_LOG.open("a") as log:
        log.write(line + "\n")
