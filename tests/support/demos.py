"""What a `fleetscale demo` leaves running, and a lock for the tests that look."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def demo_processes() -> list[str]:
    """Command lines of processes that belong to a demo: its controller, workers, Redis
    (found by its working directory: the server rewrites its command line)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if "fleetscale.demo.app" in cmdline or "fleetscale-demo-" in cmdline + cwd:
            found.append(f"{cmdline} (in {cwd})")
    return found


@contextlib.contextmanager
def alone_among_demo_tests() -> Iterator[None]:
    """Hold the machine-wide lock of the tests that run a demo and look for demo
    processes machine-wide (`demo_processes`), so that no two of them run at once
    (the suite runs in two processes; another run may share the machine). Blocks
    until the holder is done."""
    path = Path(tempfile.gettempdir()) / "fleetscale-tests-demos.lock"
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
