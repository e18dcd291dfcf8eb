"""Real subprocesses for tests: started in their own session, always reaped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

REPO = Path(__file__).resolve().parents[2]
T = TypeVar("T")


@dataclass
class Proc:
    """A started subprocess and the file its output goes to."""

    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        """Send `signum` to the process (not its group)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.popen.pid, signum)

    def wait(self, timeout_s: float) -> int:
        """Wait for exit; return the exit code (raises TimeoutExpired)."""
        return self.popen.wait(timeout=timeout_s)

    def alive(self) -> bool:
        return self.popen.poll() is None


class Processes:
    """The subprocesses of one test; `reap_all` kills and waits for every one."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[Proc] = []

    def fleetscale(self, *args: str, env: Mapping[str, str] | None = None, name: str = "") -> Proc:
        """Start `python -m fleetscale ARGS` from the repository root."""
        argv = [sys.executable, "-m", "fleetscale", *args]
        return self.spawn(argv, env=env, name=name or args[0])

    def spawn(
        self, argv: list[str], env: Mapping[str, str] | None = None, name: str = "proc"
    ) -> Proc:
        """Start `argv` in a new session, its output to a log file named after `name`."""
        log_path = self.log_dir / f"{name}-{len(self.started)}.log"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        with open(log_path, "wb") as log:
            popen = subprocess.Popen(
                argv,
                cwd=REPO,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(popen, log_path)
        self.started.append(proc)
        return proc

    def reap_all(self) -> None:
        """Kill every process group still running and wait for it."""
        for proc in self.started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGKILL)
            proc.popen.wait()


def wait_until(
    condition: Callable[[], T],
    timeout_s: float = 30.0,
    every_s: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll `condition` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)
