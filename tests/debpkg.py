"""Debian tools a test needs, found on PATH or installed with apt-get the way a fresh
machine (CI runs as root) gets them; None when they can't be had here."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess


@functools.cache
def tool(command: str, package: str) -> str | None:
    """The path of ``command``, installing Debian's ``package`` first if it is missing
    and this process may (root, with apt-get); None if it still can't be found."""
    found = shutil.which(command)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True, timeout=600).returncode != 0:
        # A fresh machine has no package lists yet.
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        subprocess.run(install, env=env, capture_output=True, timeout=600)
    return shutil.which(command)
