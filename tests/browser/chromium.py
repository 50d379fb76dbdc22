"""Debian's Chromium for the browser tests, installed from Debian's packages when missing.

Playwright's own browser download is not reachable on this project's machines; the
Python package (``playwright``, in ``requirements.lock``) drives the system Chromium
through ``executable_path``. CI runs as root on a Debian machine: the first browser test
installs the ``chromium`` package with apt (about 20 s) if it is not there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

#: Flags for a headless Chromium on a closed network (no background connections).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _apt_install() -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"]
    if subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=900).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode:
            raise RuntimeError(f"apt-get install chromium failed:\n{done.stdout}\n{done.stderr}")


def executable() -> str:
    """The path of Chromium, installing it first if needed (root and apt required)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "the browser tests need Debian's chromium: `sudo apt-get install chromium` "
            "(they install it themselves when run as root)"
        )
    _apt_install()
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise RuntimeError("apt-get installed chromium, but /usr/bin/chromium is missing")
    return path
