"""A real headless Chromium for the console's end-to-end tests and screenshots:
Debian's ``chromium`` package, driven by Playwright for Python (which launches it by
path: no browser download). Installed with apt-get when it is missing and we are root
(as `make test` and CI run); otherwise the tests that need it are skipped, saying why."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def find_chromium() -> tuple[Path | None, str]:
    """Chromium's path, installing it first if that is possible here; else None and
    the reason it is not there."""
    if CHROMIUM.exists():
        return CHROMIUM, ""
    if shutil.which("apt-get") is None:
        return None, f"{CHROMIUM} is missing and there is no apt-get to install it"
    if os.geteuid() != 0:
        return None, f"{CHROMIUM} is missing; install it: sudo apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "chromium"]
    done = subprocess.run(install, env=env, capture_output=True, timeout=900, check=False)
    if done.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, timeout=900, check=False)
    if done.returncode != 0 or not CHROMIUM.exists():
        tail = done.stderr.decode(errors="replace")[-500:]
        return None, f"apt-get install chromium failed: {tail}"
    return CHROMIUM, ""
