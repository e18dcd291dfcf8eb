"""A launcher of stand-in worker processes (tests/support/fakeworker.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fleetscale.worker.lifeline import STATUS_FD_ENV

FAKE = str(Path(__file__).with_name("fakeworker.py"))


class FakeLauncher:
    """Starts stand-in workers in `mode` (see fakeworker.py) and counts them."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.launched = 0

    def __call__(self, *, warm: bool, status_fd: int) -> subprocess.Popen[bytes]:
        self.launched += 1
        env = {**os.environ, STATUS_FD_ENV: str(status_fd), "FAKE_MODE": self.mode}
        argv = [sys.executable, FAKE, *(["--warm"] if warm else [])]
        return subprocess.Popen(argv, env=env, pass_fds=(status_fd,))
